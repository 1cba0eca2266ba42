package rotate

import (
	"slices"
	"sync/atomic"

	"github.com/keyprovider/keyprovider"
)

// notices is the notification state of a Source, guarded by its mu.
type notices struct {
	subs      []*subscriber // in the order of registration
	events    []event       // queued for the notifier
	seq       uint64        // events queued so far
	announced keyprovider.Key
	wake      chan struct{} // tells the notifier there are events
}

// subscriber is one OnRotate registration. It is told the events queued
// from seq from on; from is the seq of its welcome, if it has one.
type subscriber struct {
	fn        func(old, new keyprovider.Key)
	from      uint64
	cancelled atomic.Bool
}

// event is a change of the key, for every subscriber, or, with to set, the
// key held when to subscribed, for to alone.
type event struct {
	seq      uint64
	old, new keyprovider.Key
	to       *subscriber
}

// OnRotate registers fn to be called after every change of the key, with
// the key it replaced (the zero Key for the first key) and the new one. If
// the Source holds a key already, fn is first called with the zero Key and
// that key, as if it were the first: a subscriber never misses the key in
// force when it subscribed. fn is called once per real change, never with
// equal keys, in order, from a goroutine of the Source's, never while a
// lock is held; a slow fn delays later notifications but never the
// refresher. A panic in fn is recovered and logged (without its value),
// and notifications go on. The returned func unregisters fn; a call already
// under way may still end after it returns.
func (s *Source) OnRotate(fn func(old, new keyprovider.Key)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := &subscriber{fn: fn, from: s.seq}
	s.subs = append(s.subs, sub)
	if !s.announced.IsZero() && !s.closed {
		s.queueLocked(event{new: s.announced, to: sub})
	}
	return func() {
		sub.cancelled.Store(true)
		s.mu.Lock()
		s.subs = slices.DeleteFunc(s.subs, func(x *subscriber) bool { return x == sub })
		s.mu.Unlock()
	}
}

// announceLocked queues the change from old to new for every subscriber.
func (s *Source) announceLocked(old, new keyprovider.Key) {
	s.announced = new
	s.queueLocked(event{old: old, new: new})
}

func (s *Source) queueLocked(ev event) {
	ev.seq = s.seq
	s.seq++
	s.events = append(s.events, ev)
	select {
	case s.wake <- struct{}{}:
	default: // the notifier has been told already
	}
}

// notifier delivers the queued events to the subscribers, in order,
// outside every lock.
func (s *Source) notifier() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		events := s.events
		s.events = nil
		subs := slices.Clone(s.subs)
		s.mu.Unlock()
		for _, ev := range events {
			for _, sub := range subs {
				if ev.seq >= sub.from && (ev.to == nil || ev.to == sub) && !sub.cancelled.Load() {
					s.deliver(sub, ev)
				}
			}
		}
	}
}

// deliver calls one subscriber, recovering a panic in it.
func (s *Source) deliver(sub *subscriber, ev event) {
	defer func() {
		if v := recover(); v != nil {
			// The value may hold a key: only its type is logged.
			s.o.Logger.Error("rotate: OnRotate callback panicked; notifications go on",
				"error", ErrPanic, "panic_type", typeName(v), "new", ev.new)
		}
	}()
	sub.fn(ev.old, ev.new)
}
