package awssmtest

// ListSecrets, BatchGetSecretValue and UpdateSecret: the operations the AWS
// CLI and the SDKs' caching libraries call besides the basic ones.

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tag is a secret's tag, as CreateSecret takes it and DescribeSecret and
// ListSecrets return it.
type Tag struct {
	Key   string
	Value string
}

// checkTags refuses what AWS refuses: more than 50 tags, a key of 0 or more
// than 128 characters, a value longer than 256, the reserved "aws:" prefix,
// and a key given twice.
func checkTags(tags []Tag) *apiError {
	if len(tags) > 50 {
		return errParam("A secret can have at most 50 tags.")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case len(t.Key) < 1 || len(t.Key) > 128:
			return errParam("A tag key must be 1 to 128 characters long.")
		case len(t.Value) > 256:
			return errParam("A tag value can be at most 256 characters long.")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return errParam("Tag keys can't start with aws:, which is reserved for AWS use.")
		case seen[t.Key]:
			return errParam("Tag keys must be unique: " + t.Key + " is given twice.")
		}
		seen[t.Key] = true
	}
	return nil
}

// stageMap is the VersionIdsToStages of DescribeSecret (SecretVersionsToStages
// of ListSecrets): the versions with labels; deprecated ones are not listed.
func (s *secret) stageMap() map[string][]string {
	var m map[string][]string
	for _, v := range s.versions {
		if len(v.stages) == 0 {
			continue
		}
		if m == nil {
			m = map[string][]string{}
		}
		m[v.id] = slices.Clone(v.stages)
	}
	return m
}

// filter is one of ListSecrets' and BatchGetSecretValue's Filters.
type filter struct {
	Key    string
	Values []string
}

var filterKeys = []string{"description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"}

func checkFilters(fs []filter) *apiError {
	if len(fs) > 10 {
		return errParam("You can specify at most 10 filters.")
	}
	for _, f := range fs {
		if !slices.Contains(filterKeys, f.Key) {
			return errParam("Invalid filter key: " + f.Key + ".")
		}
		if len(f.Values) < 1 || len(f.Values) > 10 {
			return errParam("A filter must have 1 to 10 values.")
		}
	}
	return nil
}

// matches applies filters as the ListSecrets API reference describes them:
// every filter must match (AND), any of a filter's values may (OR); a value
// is a prefix, case-sensitive for name, tag-key and tag-value, not for
// description and all; a leading "!" negates it.
func (s *secret) matches(fs []filter, region string) bool {
	for _, f := range fs {
		ok := false
		for _, v := range f.Values {
			neg := strings.HasPrefix(v, "!")
			if s.matchesOne(f.Key, strings.TrimPrefix(v, "!"), region) != neg {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *secret) matchesOne(key, v, region string) bool {
	ci := func(a string) bool { return strings.HasPrefix(strings.ToLower(a), strings.ToLower(v)) }
	switch key {
	case "name":
		return strings.HasPrefix(s.name, v)
	case "description":
		return ci(s.description)
	case "tag-key":
		return slices.ContainsFunc(s.tags, func(t Tag) bool { return strings.HasPrefix(t.Key, v) })
	case "tag-value":
		return slices.ContainsFunc(s.tags, func(t Tag) bool { return strings.HasPrefix(t.Value, v) })
	case "primary-region":
		return region == v
	case "owning-service":
		return false // no secret of the emulator is managed by a service
	}
	// all: any attribute, case-insensitive.
	return ci(s.name) || ci(s.description) ||
		slices.ContainsFunc(s.tags, func(t Tag) bool { return ci(t.Key) || ci(t.Value) })
}

// page cuts list at the NextToken and MaxResults of a request; tokens are
// offsets ("s12").
func page[T any](list []T, token string, maxResults, defaultMax int) ([]T, string, *apiError) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(token, "s"))
		if err != nil || !strings.HasPrefix(token, "s") || n < 0 || n > len(list) {
			return nil, "", newError("InvalidNextTokenException", "The NextToken value is invalid.")
		}
		start = n
	}
	size := cmp.Or(maxResults, defaultMax)
	end := min(start+size, len(list))
	next := ""
	if end < len(list) {
		next = "s" + strconv.Itoa(end)
	}
	return list[start:end], next, nil
}

type listSecretsInput struct {
	IncludePlannedDeletion bool
	MaxResults             int
	NextToken              string
	Filters                []filter
	SortOrder              string
	SortBy                 string
}

type secretListEntry struct {
	ARN                    string
	Name                   string
	Description            string              `json:",omitempty"`
	KmsKeyId               string              `json:",omitempty"`
	LastChangedDate        *epoch              `json:",omitempty"`
	LastAccessedDate       *epoch              `json:",omitempty"`
	DeletedDate            *epoch              `json:",omitempty"`
	Tags                   []Tag               `json:",omitempty"`
	SecretVersionsToStages map[string][]string `json:",omitempty"`
	CreatedDate            *epoch              `json:",omitempty"`
}

type listSecretsOutput struct {
	SecretList []secretListEntry
	NextToken  string `json:",omitempty"`
}

func (s *Server) listSecrets(body []byte, now time.Time) (any, *apiError) {
	var in listSecretsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.MaxResults < 0 || in.MaxResults > 100 {
		return nil, errParam("MaxResults must be between 1 and 100.")
	}
	if err := checkFilters(in.Filters); err != nil {
		return nil, err
	}
	if in.SortOrder != "" && in.SortOrder != "asc" && in.SortOrder != "desc" {
		return nil, errParam("SortOrder must be asc or desc.")
	}
	sorted, aerr := s.sortedSecrets(in.SortBy, in.SortOrder == "desc", now)
	if aerr != nil {
		return nil, aerr
	}
	var all []secretListEntry
	for _, sec := range sorted {
		if sec.scheduledForDeletion() && !in.IncludePlannedDeletion || !sec.matches(in.Filters, s.store.region) {
			continue
		}
		all = append(all, secretListEntry{
			ARN: sec.arn, Name: sec.name, Description: sec.description, KmsKeyId: sec.kmsKeyID,
			LastChangedDate: optTime(sec.lastChanged), LastAccessedDate: optTime(sec.lastAccessed),
			DeletedDate: optTime(sec.deletion), Tags: slices.Clone(sec.tags),
			SecretVersionsToStages: sec.stageMap(), CreatedDate: optTime(sec.created),
		})
	}
	list, next, aerr := page(all, in.NextToken, in.MaxResults, 100)
	if aerr != nil {
		return nil, aerr
	}
	return listSecretsOutput{SecretList: append([]secretListEntry{}, list...), NextToken: next}, nil
}

// sortedSecrets returns the secrets in the order of SortBy (created-date,
// the default, last-accessed-date, last-changed-date or name).
func (s *Server) sortedSecrets(by string, desc bool, now time.Time) ([]*secret, *apiError) {
	s.store.purge(now)
	key := map[string]func(a, b *secret) int{
		"":                   func(a, b *secret) int { return a.created.Compare(b.created) },
		"created-date":       func(a, b *secret) int { return a.created.Compare(b.created) },
		"last-accessed-date": func(a, b *secret) int { return a.lastAccessed.Compare(b.lastAccessed) },
		"last-changed-date":  func(a, b *secret) int { return a.lastChanged.Compare(b.lastChanged) },
		"name":               func(a, b *secret) int { return strings.Compare(a.name, b.name) },
	}[by]
	if key == nil {
		return nil, errParam("SortBy must be created-date, last-accessed-date, last-changed-date or name.")
	}
	out := slices.Clone(s.store.secrets)
	slices.SortStableFunc(out, key)
	if desc {
		slices.Reverse(out)
	}
	return out, nil
}

type batchGetSecretValueInput struct {
	SecretIdList []string
	Filters      []filter
	MaxResults   int
	NextToken    string
}

type batchError struct {
	SecretId  string
	ErrorCode string
	Message   string
}

type batchGetSecretValueOutput struct {
	SecretValues []getSecretValueOutput
	Errors       []batchError `json:",omitempty"`
	NextToken    string       `json:",omitempty"`
}

func (s *Server) batchGetSecretValue(body []byte, now time.Time) (any, *apiError) {
	var in batchGetSecretValueInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	switch {
	case len(in.SecretIdList) > 0 && len(in.Filters) > 0:
		return nil, errParam("You can't specify both SecretIdList and Filters.")
	case len(in.SecretIdList) == 0 && len(in.Filters) == 0:
		return nil, errParam("You must specify either SecretIdList or Filters.")
	case len(in.SecretIdList) > 20:
		return nil, errParam("SecretIdList can have at most 20 secret IDs.")
	case in.MaxResults < 0 || in.MaxResults > 20:
		return nil, errParam("MaxResults must be between 1 and 20.")
	case in.MaxResults > 0 && len(in.SecretIdList) > 0:
		return nil, errParam("MaxResults can only be used with Filters.")
	}
	if err := checkFilters(in.Filters); err != nil {
		return nil, err
	}
	if len(in.SecretIdList) > 0 {
		return s.batchValues(in.SecretIdList, now), nil
	}
	sorted, _ := s.sortedSecrets("", false, now)
	var arns []string
	for _, sec := range sorted {
		if !sec.scheduledForDeletion() && sec.matches(in.Filters, s.store.region) {
			arns = append(arns, sec.arn)
		}
	}
	ids, next, aerr := page(arns, in.NextToken, in.MaxResults, 20)
	if aerr != nil {
		return nil, aerr
	}
	out := s.batchValues(ids, now)
	out.NextToken = next
	return out, nil
}

// batchValues reads the AWSCURRENT value of each secret; a secret that
// cannot be read is an entry of Errors, as AWS reports it.
func (s *Server) batchValues(ids []string, now time.Time) batchGetSecretValueOutput {
	out := batchGetSecretValueOutput{SecretValues: []getSecretValueOutput{}}
	for _, id := range ids {
		v, aerr := s.getSecretValue([]byte(`{"SecretId":`+strconv.Quote(id)+`}`), now)
		if aerr != nil {
			out.Errors = append(out.Errors, batchError{SecretId: id, ErrorCode: aerr.code, Message: aerr.message})
			continue
		}
		out.SecretValues = append(out.SecretValues, v.(getSecretValueOutput))
	}
	return out
}

type updateSecretInput struct {
	SecretId           string
	ClientRequestToken string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
}

type updateSecretOutput struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

func (s *Server) updateSecret(body []byte, now time.Time) (any, *apiError) {
	var in updateSecretInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	sec, aerr := s.findLive(in.SecretId, now)
	if aerr != nil {
		return nil, aerr
	}
	out := updateSecretOutput{ARN: sec.arn, Name: sec.name}
	if in.SecretString != nil || in.SecretBinary != nil {
		if v := sec.version(in.ClientRequestToken); v != nil && in.ClientRequestToken != "" {
			if !v.sameValue(in.SecretString, in.SecretBinary) {
				return nil, newError(codeResourceExists, "You can't modify an existing version, you can only create a new version.")
			}
			out.VersionId = v.id
		} else {
			v, aerr := s.newVersion(sec, in.ClientRequestToken, in.SecretString, in.SecretBinary, nil, now)
			if aerr != nil {
				return nil, aerr
			}
			out.VersionId = v.id
		}
	}
	if in.Description != nil {
		sec.description = *in.Description
	}
	if in.KmsKeyId != nil {
		sec.kmsKeyID = *in.KmsKeyId
	}
	sec.lastChanged = now
	return out, nil
}
