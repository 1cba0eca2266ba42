package awssmtest

import (
	"bytes"
	"slices"
	"strings"
	"time"
)

// The staging labels Secrets Manager gives meaning to.
const (
	// StageCurrent marks the version GetSecretValue returns by default.
	StageCurrent = "AWSCURRENT"
	// StagePrevious follows AWSCURRENT: the version that last held it.
	StagePrevious = "AWSPREVIOUS"
	// StagePending marks a version being rotated in; it is returned only
	// when asked for.
	StagePending = "AWSPENDING"
)

// Limits AWS documents, enforced by the emulator.
const (
	maxStagesPerVersion = 20
	// maxVersions is the quota of versions a secret keeps. Past it, Secrets
	// Manager removes the oldest deprecated versions (those without labels)
	// but never one created less than minVersionAge ago; when none can go,
	// a new version is refused (PutSecretValue API reference: "Secrets
	// Manager ... does not remove versions created less than 24 hours ago.
	// If you call PutSecretValue more than once every 10 minutes, you
	// create more versions than Secrets Manager removes, and you will
	// reach the quota for secret versions.").
	maxVersions   = 100
	minVersionAge = 24 * time.Hour
)

type version struct {
	id           string
	str          *string
	bin          []byte
	stages       []string
	created      time.Time
	lastAccessed time.Time
}

func (v *version) sameValue(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if v.str != nil && *v.str != *str {
		return false
	}
	return bytes.Equal(v.bin, bin)
}

type secret struct {
	name, arn    string
	description  string
	kmsKeyID     string
	created      time.Time
	lastChanged  time.Time
	lastAccessed time.Time
	deletion     time.Time // zero unless scheduled for deletion
	versions     []*version
	tags         []Tag
}

func (s *secret) scheduledForDeletion() bool { return !s.deletion.IsZero() }

func (s *secret) version(id string) *version {
	for _, v := range s.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// holder returns the version that has label, or nil.
func (s *secret) holder(label string) *version {
	for _, v := range s.versions {
		if slices.Contains(v.stages, label) {
			return v
		}
	}
	return nil
}

// attach moves label to v, from whichever version held it. Moving
// AWSCURRENT moves AWSPREVIOUS onto the version that held AWSCURRENT, as
// Secrets Manager does.
func (s *secret) attach(label string, v *version) *apiError {
	old := s.holder(label)
	if old == v {
		return nil
	}
	if len(v.stages) >= maxStagesPerVersion {
		return newError(codeLimitExceeded, "A secret version can have at most 20 staging labels.")
	}
	if old != nil {
		old.stages = slices.DeleteFunc(old.stages, func(l string) bool { return l == label })
	}
	v.stages = append(v.stages, label)
	if label == StageCurrent && old != nil {
		if prev := s.holder(StagePrevious); prev != nil {
			prev.stages = slices.DeleteFunc(prev.stages, func(l string) bool { return l == StagePrevious })
		}
		old.stages = append(old.stages, StagePrevious)
	}
	return nil
}

// detach removes label from v.
func (s *secret) detach(label string, v *version) {
	v.stages = slices.DeleteFunc(v.stages, func(l string) bool { return l == label })
}

// prune removes the oldest deprecated versions created at least
// minVersionAge before now while the secret has more than limit versions.
// It reports whether the secret is then within limit.
func (s *secret) prune(limit int, now time.Time) bool {
	for len(s.versions) > limit {
		i := slices.IndexFunc(s.versions, func(v *version) bool {
			return len(v.stages) == 0 && now.Sub(v.created) >= minVersionAge
		})
		if i < 0 {
			return false
		}
		s.versions = slices.Delete(s.versions, i, i+1)
	}
	return true
}

// errVersionQuota is AWS's answer to a new version past the quota.
func errVersionQuota() *apiError {
	return newError(codeLimitExceeded, "You have exceeded the maximum number of versions (100) for this secret; versions created less than 24 hours ago are not removed.")
}

// store holds the secrets; the Server guards it with its mutex.
type store struct {
	region, account string
	secrets         []*secret
}

// lookup finds a secret by name, full ARN or partial ARN (an ARN without
// the six random characters Secrets Manager appends), purging it first if its
// recovery window is over.
func (st *store) lookup(id string, now time.Time) *secret {
	st.purge(now)
	for _, s := range st.secrets {
		switch {
		case id == s.name, id == s.arn:
			return s
		case strings.HasPrefix(id, "arn:") && strings.HasPrefix(s.arn, id+"-") && len(s.arn) == len(id)+7:
			return s
		}
	}
	return nil
}

// purge removes the secrets whose scheduled deletion date has passed.
func (st *store) purge(now time.Time) {
	st.secrets = slices.DeleteFunc(st.secrets, func(s *secret) bool {
		return s.scheduledForDeletion() && !now.Before(s.deletion)
	})
}

func (st *store) remove(s *secret) {
	st.secrets = slices.DeleteFunc(st.secrets, func(x *secret) bool { return x == s })
}
