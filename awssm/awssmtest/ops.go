package awssmtest

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// epoch is a timestamp as the AWS JSON protocols send it: seconds since the
// Unix epoch, with a fraction.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

func optTime(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// day truncates t to its day in UTC, as Secrets Manager reports
// LastAccessedDate.
func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// handler handles one operation: it decodes the request body, changes the
// store and returns the response body or an AWS error. It runs under the
// server's lock.
type handler func(s *Server, body []byte, now time.Time) (any, *apiError)

var operations = map[string]handler{
	"CreateSecret":             (*Server).createSecret,
	"GetSecretValue":           (*Server).getSecretValue,
	"PutSecretValue":           (*Server).putSecretValue,
	"UpdateSecretVersionStage": (*Server).updateSecretVersionStage,
	"DescribeSecret":           (*Server).describeSecret,
	"ListSecretVersionIds":     (*Server).listSecretVersionIds,
	"DeleteSecret":             (*Server).deleteSecret,
	"RestoreSecret":            (*Server).restoreSecret,
	"ListSecrets":              (*Server).listSecrets,
	"BatchGetSecretValue":      (*Server).batchGetSecretValue,
	"UpdateSecret":             (*Server).updateSecret,
}

func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newError(codeSerialization, "The request body could not be parsed as the operation's JSON input.")
	}
	return nil
}

// secretIDOf returns the secret a request names, for fault matching.
func secretIDOf(body []byte) string {
	var in struct{ SecretId, Name string }
	_ = json.Unmarshal(body, &in)
	if in.SecretId != "" {
		return in.SecretId
	}
	return in.Name
}

var validName = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)

func checkToken(token string) *apiError {
	if token != "" && (len(token) < 32 || len(token) > 64) {
		return errParam("ClientRequestToken must be between 32 and 64 characters long.")
	}
	return nil
}

func checkValue(str *string, bin []byte) *apiError {
	if str != nil && bin != nil {
		return errParam("You can't specify both SecretString and SecretBinary.")
	}
	if str != nil && len(*str) > 65536 || len(bin) > 65536 {
		return errParam("A secret value can be at most 65536 bytes long.")
	}
	return nil
}

// findLive finds a secret that is not scheduled for deletion.
func (s *Server) findLive(id string, now time.Time) (*secret, *apiError) {
	if id == "" {
		return nil, errParam("You must specify SecretId.")
	}
	sec := s.store.lookup(id, now)
	if sec == nil {
		return nil, errNotFound()
	}
	if sec.scheduledForDeletion() {
		return nil, errMarkedForDeletion()
	}
	return sec, nil
}

// newVersion adds a version holding str or bin to sec and attaches stages to
// it (AWSCURRENT when stages is empty).
func (s *Server) newVersion(sec *secret, token string, str *string, bin []byte, stages []string, now time.Time) (*version, *apiError) {
	if token == "" {
		token = s.newUUID()
	}
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	if len(stages) > maxStagesPerVersion {
		return nil, newError(codeLimitExceeded, "A secret version can have at most 20 staging labels.")
	}
	if slices.Contains(stages, "") {
		return nil, errParam("A staging label can't be empty.")
	}
	// "If this operation creates the first version for the secret, then
	// Secrets Manager automatically attaches the staging label AWSCURRENT
	// to the new version" (PutSecretValue API reference), whatever
	// VersionStages says.
	if sec.holder(StageCurrent) == nil && !slices.Contains(stages, StageCurrent) {
		stages = append(slices.Clone(stages), StageCurrent)
	}
	if !sec.prune(maxVersions-1, now) {
		return nil, errVersionQuota()
	}
	v := &version{id: token, str: str, bin: slices.Clone(bin), created: now}
	sec.versions = append(sec.versions, v)
	for _, label := range slices.Compact(slices.Sorted(slices.Values(stages))) {
		if err := sec.attach(label, v); err != nil {
			return nil, err
		}
	}
	sec.lastChanged = now
	return v, nil
}

type createSecretInput struct {
	Name               string
	ClientRequestToken string
	Description        string
	KmsKeyId           string
	SecretString       *string
	SecretBinary       []byte
	Tags               []Tag
}

type createSecretOutput struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

func (s *Server) createSecret(body []byte, now time.Time) (any, *apiError) {
	var in createSecretInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !validName.MatchString(in.Name) {
		return nil, errParam("Name must be 1 to 512 characters: letters, digits and /_+=.@-")
	}
	if err := checkToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if existing := s.store.lookup(in.Name, now); existing != nil {
		if existing.scheduledForDeletion() {
			return nil, newError(codeInvalidRequest, "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retried CreateSecret (same token, same value) succeeds again.
		if v := existing.version(in.ClientRequestToken); v != nil && in.ClientRequestToken != "" && v.sameValue(in.SecretString, in.SecretBinary) {
			return createSecretOutput{ARN: existing.arn, Name: existing.name, VersionId: v.id}, nil
		}
		return nil, newError(codeResourceExists, "The operation failed because the secret "+in.Name+" already exists.")
	}
	sec := &secret{
		name:        in.Name,
		arn:         "arn:aws:secretsmanager:" + s.store.region + ":" + s.store.account + ":secret:" + in.Name + "-" + s.randomSuffix(),
		description: in.Description,
		kmsKeyID:    in.KmsKeyId,
		created:     now,
		lastChanged: now,
		tags:        slices.Clone(in.Tags),
	}
	out := createSecretOutput{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		v, err := s.newVersion(sec, in.ClientRequestToken, in.SecretString, in.SecretBinary, nil, now)
		if err != nil {
			return nil, err
		}
		out.VersionId = v.id
	}
	s.store.secrets = append(s.store.secrets, sec)
	return out, nil
}

type getSecretValueInput struct {
	SecretId     string
	VersionId    string
	VersionStage string
}

type getSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
}

func (s *Server) getSecretValue(body []byte, now time.Time) (any, *apiError) {
	var in getSecretValueInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.findLive(in.SecretId, now)
	if err != nil {
		return nil, err
	}
	var v *version
	switch {
	case in.VersionId != "":
		if len(in.VersionId) < 32 || len(in.VersionId) > 64 {
			return nil, errParam("VersionId must be between 32 and 64 characters long.")
		}
		v = sec.version(in.VersionId)
		if v == nil {
			return nil, newError(codeResourceNotFound, "Secrets Manager can't find the specified secret value for VersionId: "+in.VersionId)
		}
		if in.VersionStage != "" && !slices.Contains(v.stages, in.VersionStage) {
			return nil, newError(codeInvalidRequest, "You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		stage := in.VersionStage
		if stage == "" {
			stage = StageCurrent
		}
		v = sec.holder(stage)
		if v == nil {
			return nil, newError(codeResourceNotFound, "Secrets Manager can't find the specified secret value for staging label: "+stage)
		}
	}
	v.lastAccessed = day(now)
	sec.lastAccessed = day(now)
	return getSecretValueOutput{
		ARN:           sec.arn,
		Name:          sec.name,
		VersionId:     v.id,
		SecretString:  v.str,
		SecretBinary:  v.bin,
		VersionStages: slices.Clone(v.stages),
		CreatedDate:   optTime(v.created),
	}, nil
}

type putSecretValueInput struct {
	SecretId           string
	ClientRequestToken string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
}

type putSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

func (s *Server) putSecretValue(body []byte, now time.Time) (any, *apiError) {
	var in putSecretValueInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, errParam("You must provide either SecretString or SecretBinary.")
	}
	if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	sec, err := s.findLive(in.SecretId, now)
	if err != nil {
		return nil, err
	}
	if v := sec.version(in.ClientRequestToken); v != nil && in.ClientRequestToken != "" {
		if !v.sameValue(in.SecretString, in.SecretBinary) {
			return nil, newError(codeResourceExists, "You can't modify an existing version, you can only create a new version.")
		}
		// Idempotent retry: nothing changes.
		return putSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
	}
	v, err := s.newVersion(sec, in.ClientRequestToken, in.SecretString, in.SecretBinary, in.VersionStages, now)
	if err != nil {
		return nil, err
	}
	return putSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

type updateSecretVersionStageInput struct {
	SecretId            string
	VersionStage        string
	MoveToVersionId     string
	RemoveFromVersionId string
}

type arnName struct {
	ARN  string
	Name string
}

func (s *Server) updateSecretVersionStage(body []byte, now time.Time) (any, *apiError) {
	var in updateSecretVersionStageInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.VersionStage == "" {
		return nil, errParam("You must specify VersionStage.")
	}
	sec, err := s.findLive(in.SecretId, now)
	if err != nil {
		return nil, err
	}
	holder := sec.holder(in.VersionStage)
	var from, to *version
	if in.RemoveFromVersionId != "" {
		if from = sec.version(in.RemoveFromVersionId); from == nil {
			return nil, newError(codeResourceNotFound, "Secrets Manager can't find the specified secret version: "+in.RemoveFromVersionId)
		}
		if from != holder {
			return nil, errParam("The staging label " + in.VersionStage + " is not attached to version " + in.RemoveFromVersionId + ".")
		}
	}
	if in.MoveToVersionId != "" {
		if to = sec.version(in.MoveToVersionId); to == nil {
			return nil, newError(codeResourceNotFound, "Secrets Manager can't find the specified secret version: "+in.MoveToVersionId)
		}
	}
	switch {
	case to == nil && from == nil:
		return nil, errParam("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	case to == nil:
		if in.VersionStage == StageCurrent {
			return nil, errParam("You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.")
		}
		sec.detach(in.VersionStage, from)
	default:
		if holder != nil && holder != to && from == nil {
			return nil, errParam("The parameter RemoveFromVersionId can't be empty. Staging label " + in.VersionStage +
				" is currently attached to version " + holder.id + ", so you must explicitly reference that version in RemoveFromVersionId.")
		}
		if err := sec.attach(in.VersionStage, to); err != nil {
			return nil, err
		}
	}
	sec.lastChanged = now
	sec.prune(maxVersions, now)
	return arnName{ARN: sec.arn, Name: sec.name}, nil
}
