package awssmtest

// The operations that describe, list, delete and restore secrets.

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

type describeSecretOutput struct {
	ARN                string
	Name               string
	Description        string              `json:",omitempty"`
	KmsKeyId           string              `json:",omitempty"`
	CreatedDate        *epoch              `json:",omitempty"`
	LastChangedDate    *epoch              `json:",omitempty"`
	LastAccessedDate   *epoch              `json:",omitempty"`
	DeletedDate        *epoch              `json:",omitempty"`
	VersionIdsToStages map[string][]string `json:",omitempty"`
	Tags               []Tag               `json:",omitempty"`
}

func (s *Server) describeSecret(body []byte, now time.Time) (any, *apiError) {
	var in struct{ SecretId string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.SecretId == "" {
		return nil, errParam("You must specify SecretId.")
	}
	sec := s.store.lookup(in.SecretId, now)
	if sec == nil {
		return nil, errNotFound()
	}
	out := describeSecretOutput{
		ARN:              sec.arn,
		Name:             sec.name,
		Description:      sec.description,
		KmsKeyId:         sec.kmsKeyID,
		CreatedDate:      optTime(sec.created),
		LastChangedDate:  optTime(sec.lastChanged),
		LastAccessedDate: optTime(sec.lastAccessed),
		DeletedDate:      optTime(sec.deletion),
		Tags:             slices.Clone(sec.tags),
	}
	out.VersionIdsToStages = sec.stageMap()
	return out, nil
}

type listSecretVersionIdsInput struct {
	SecretId          string
	IncludeDeprecated bool
	MaxResults        int
	NextToken         string
}

type versionEntry struct {
	VersionId        string
	VersionStages    []string `json:",omitempty"`
	CreatedDate      *epoch   `json:",omitempty"`
	LastAccessedDate *epoch   `json:",omitempty"`
}

type listSecretVersionIdsOutput struct {
	ARN       string
	Name      string
	Versions  []versionEntry
	NextToken string `json:",omitempty"`
}

func (s *Server) listSecretVersionIds(body []byte, now time.Time) (any, *apiError) {
	var in listSecretVersionIdsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.SecretId == "" {
		return nil, errParam("You must specify SecretId.")
	}
	if in.MaxResults < 0 || in.MaxResults > 100 {
		return nil, errParam("MaxResults must be between 1 and 100.")
	}
	sec := s.store.lookup(in.SecretId, now)
	if sec == nil {
		return nil, errNotFound()
	}
	var all []versionEntry
	for _, v := range sec.versions {
		if len(v.stages) == 0 && !in.IncludeDeprecated {
			continue
		}
		all = append(all, versionEntry{
			VersionId:        v.id,
			VersionStages:    slices.Clone(v.stages),
			CreatedDate:      optTime(v.created),
			LastAccessedDate: optTime(v.lastAccessed),
		})
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "v"))
		if err != nil || n < 0 || n > len(all) {
			return nil, newError("InvalidNextTokenException", "The NextToken value is invalid.")
		}
		start = n
	}
	size := in.MaxResults
	if size == 0 {
		size = 100
	}
	out := listSecretVersionIdsOutput{ARN: sec.arn, Name: sec.name, Versions: []versionEntry{}}
	end := min(start+size, len(all))
	out.Versions = append(out.Versions, all[start:end]...)
	if end < len(all) {
		out.NextToken = "v" + strconv.Itoa(end)
	}
	return out, nil
}

type deleteSecretInput struct {
	SecretId                   string
	ForceDeleteWithoutRecovery bool
	RecoveryWindowInDays       *int
}

type deleteSecretOutput struct {
	ARN          string
	Name         string
	DeletionDate *epoch
}

func (s *Server) deleteSecret(body []byte, now time.Time) (any, *apiError) {
	var in deleteSecretInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.SecretId == "" {
		return nil, errParam("You must specify SecretId.")
	}
	if in.ForceDeleteWithoutRecovery && in.RecoveryWindowInDays != nil {
		return nil, errParam("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := 30
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errParam("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	sec := s.store.lookup(in.SecretId, now)
	if sec == nil {
		return nil, errNotFound()
	}
	if in.ForceDeleteWithoutRecovery {
		s.store.remove(sec)
		return deleteSecretOutput{ARN: sec.arn, Name: sec.name, DeletionDate: optTime(now)}, nil
	}
	if sec.scheduledForDeletion() {
		return nil, newError(codeInvalidRequest, "You can't delete secret "+sec.name+" because it's already scheduled for deletion.")
	}
	sec.deletion = now.Add(time.Duration(days) * 24 * time.Hour)
	return deleteSecretOutput{ARN: sec.arn, Name: sec.name, DeletionDate: optTime(sec.deletion)}, nil
}

func (s *Server) restoreSecret(body []byte, now time.Time) (any, *apiError) {
	var in struct{ SecretId string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec := s.store.lookup(in.SecretId, now)
	if sec == nil {
		return nil, errNotFound()
	}
	sec.deletion = time.Time{}
	return arnName{ARN: sec.arn, Name: sec.name}, nil
}
