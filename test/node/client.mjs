// The OpenAI Node SDK as an application would use it, pointed at
// keyprov proxy: baseURL is the proxy, apiKey the local token. Run by
// cmd/keyprov's proxy tests (TestProxyOpenAINodeSDK); prints one JSON object
// per result on stdout.
//
//   node client.mjs embeddings        one embeddings call and a model list
//   node client.mjs stream            one streamed chat completion
//   node client.mjs rotation N        N embeddings calls, 4 at a time; prints
//                                     {"half":true} after N/2 and waits for a
//                                     line on stdin before sending the last N/4
//
// PROXY_BASE_URL and PROXY_TOKEN say where the proxy is. The SDK's own
// retries are off, so that every failure is counted.
import OpenAI from 'openai';
import { createInterface } from 'node:readline';

const client = new OpenAI({
  apiKey: process.env.PROXY_TOKEN,
  baseURL: process.env.PROXY_BASE_URL,
  maxRetries: 0,
  timeout: 20_000,
});
const model = process.env.PROXY_MODEL ?? 'tessera-embed-1';
const print = (v) => process.stdout.write(JSON.stringify(v) + '\n');

async function embeddings() {
  const r = await client.embeddings.create({ model, input: ['hello', 'world'] });
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  print({ embeddings: r.data.length, dims: r.data[0].embedding.length, models });
}

async function stream() {
  const s = await client.chat.completions.create({
    model: 'chat', stream: true, messages: [{ role: 'user', content: 'hi' }],
  });
  let content = '';
  let chunks = 0;
  for await (const c of s) {
    chunks++;
    content += c.choices[0]?.delta?.content ?? '';
  }
  print({ content, chunks });
}

async function rotation(n) {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  let sent = 0, done = 0, failed = 0, halfSaid = false, gate = null;
  const errors = [];
  const worker = async () => {
    for (;;) {
      if (sent >= n) return;
      if (sent === Math.floor((3 * n) / 4)) {
        gate ??= lines.next();
        await gate;
      }
      if (sent >= n) return;
      sent++;
      try {
        const r = await client.embeddings.create({ model, input: 'request ' + sent });
        if (r.data.length !== 1) throw new Error('no embedding');
      } catch (e) {
        failed++;
        if (errors.length < 5) errors.push(String(e.status ?? '') + ' ' + e.constructor.name);
      }
      done++;
      if (!halfSaid && done >= n / 2) {
        halfSaid = true;
        print({ half: true });
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  print({ done, failed, errors });
  process.exit(0);
}

const [mode, arg] = process.argv.slice(2);
try {
  if (mode === 'embeddings') await embeddings();
  else if (mode === 'stream') await stream();
  else if (mode === 'rotation') await rotation(Number(arg));
  else throw new Error('unknown mode ' + mode);
} catch (e) {
  print({ error: String(e.status ?? '') + ' ' + e.constructor.name + ': ' + e.message });
  process.exit(1);
}
