//go:build !keyprov_no_awssm && !keyprov_no_onepassword

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.yaml.in/yaml/v3"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// seed is what keyprov emulate starts with, read from --seed: a JSON or
// YAML file (by its extension: .json, or .yaml/.yml). Unknown keys are
// errors, so a typo does not silently seed nothing.
//
//	awssm:
//	  region: us-east-1            # optional, like the credentials below
//	  secrets:
//	    - name: tessera/api-key
//	      description: the Tessera key
//	      tags: {team: payments}
//	      versions:                # in order; each one is a PutSecretValue
//	        - {id: <32-64 chars, optional>, string: sk-old, stages: [AWSPREVIOUS]}
//	        - {string: sk-new}     # no stages: AWSCURRENT
//	        - {binary: <base64>, stages: [AWSPENDING]}
//	connect:
//	  token: optional-fixed-token
//	  vaults:
//	    - name: prod
//	      id: <26 lower-case letters and digits, optional>
//	      items:
//	        - title: tessera
//	          category: API_CREDENTIAL
//	          fields:
//	            - {label: credential, type: CONCEALED, value: sk-...}
//	            - {label: one-time password, type: OTP, value: "otpauth://totp/x?secret=BASE32"}
type seed struct {
	AWSSM   seedAWSSM   `json:"awssm" yaml:"awssm"`
	Connect seedConnect `json:"connect" yaml:"connect"`
}

type seedAWSSM struct {
	Region          string       `json:"region" yaml:"region"`
	AccessKeyID     string       `json:"accessKeyId" yaml:"accessKeyId"`
	SecretAccessKey string       `json:"secretAccessKey" yaml:"secretAccessKey"`
	SessionToken    string       `json:"sessionToken" yaml:"sessionToken"`
	Secrets         []seedSecret `json:"secrets" yaml:"secrets"`
}

type seedSecret struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description" yaml:"description"`
	Tags        map[string]string `json:"tags" yaml:"tags"`
	Versions    []seedVersion     `json:"versions" yaml:"versions"`
}

type seedVersion struct {
	ID     string   `json:"id" yaml:"id"`
	String *string  `json:"string" yaml:"string"`
	Binary *string  `json:"binary" yaml:"binary"` // base64
	Stages []string `json:"stages" yaml:"stages"`
}

type seedConnect struct {
	Token  string      `json:"token" yaml:"token"`
	Vaults []seedVault `json:"vaults" yaml:"vaults"`
}

type seedVault struct {
	ID    string     `json:"id" yaml:"id"`
	Name  string     `json:"name" yaml:"name"`
	Items []seedItem `json:"items" yaml:"items"`
}

type seedItem struct {
	ID       string      `json:"id" yaml:"id"`
	Title    string      `json:"title" yaml:"title"`
	Category string      `json:"category" yaml:"category"`
	Tags     []string    `json:"tags" yaml:"tags"`
	Fields   []seedField `json:"fields" yaml:"fields"`
}

type seedField struct {
	ID      string `json:"id" yaml:"id"`
	Label   string `json:"label" yaml:"label"`
	Type    string `json:"type" yaml:"type"`
	Purpose string `json:"purpose" yaml:"purpose"`
	Value   string `json:"value" yaml:"value"`
}

// readSeed reads and checks a seed file. Its errors name the file and the
// place in it, never a value.
func readSeed(path string) (seed, error) {
	var sd seed
	b, err := os.ReadFile(path)
	if err != nil {
		return sd, fmt.Errorf("%w: %v", errSeed, err)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		err = d.Decode(&sd)
	case ".yaml", ".yml":
		d := yaml.NewDecoder(bytes.NewReader(b))
		d.KnownFields(true)
		if err = d.Decode(&sd); err != nil && err.Error() == "EOF" {
			err = nil // an empty file seeds nothing
		}
	default:
		return sd, fmt.Errorf("%w: %s: the file must end in .json, .yaml or .yml", errSeed, path)
	}
	if err != nil {
		return sd, fmt.Errorf("%w: %s: %v", errSeed, path, err)
	}
	if err := sd.check(); err != nil {
		return sd, fmt.Errorf("%w: %s: %v", errSeed, path, err)
	}
	return sd, nil
}

// check finds what the emulators would refuse late, or seed wrongly.
func (sd seed) check() error {
	for i, s := range sd.AWSSM.Secrets {
		if s.Name == "" {
			return fmt.Errorf("awssm.secrets[%d]: a secret needs a name", i)
		}
		for j, v := range s.Versions {
			if (v.String == nil) == (v.Binary == nil) {
				return fmt.Errorf("awssm.secrets[%d] (%s).versions[%d]: give exactly one of string and binary", i, s.Name, j)
			}
			if v.Binary != nil {
				if _, err := base64.StdEncoding.DecodeString(*v.Binary); err != nil {
					return fmt.Errorf("awssm.secrets[%d] (%s).versions[%d]: binary is not base64", i, s.Name, j)
				}
			}
		}
	}
	for i, v := range sd.Connect.Vaults {
		if v.Name == "" {
			return fmt.Errorf("connect.vaults[%d]: a vault needs a name", i)
		}
		for j, it := range v.Items {
			if it.Title == "" {
				return fmt.Errorf("connect.vaults[%d] (%s).items[%d]: an item needs a title", i, v.Name, j)
			}
			if slices.ContainsFunc(it.Fields, func(f seedField) bool { return f.ID == "" && f.Label == "" }) {
				return fmt.Errorf("connect.vaults[%d] (%s).items[%d] (%s): every field needs a label or an id", i, v.Name, j, it.Title)
			}
		}
	}
	return nil
}

// fits refuses a seed for an emulator that is not started.
func (sd seed) fits(f emulateFlags) error {
	if f.awssm == "" && len(sd.AWSSM.Secrets) > 0 {
		return fmt.Errorf("%w: the seed has AWS secrets but --awssm is not given", errSeed)
	}
	if f.connect == "" && len(sd.Connect.Vaults) > 0 {
		return fmt.Errorf("%w: the seed has Connect vaults but --connect is not given", errSeed)
	}
	return nil
}

// applyAWSSM creates the secrets through the emulator's own API, so that
// every version and stage is checked as AWS checks them.
func applyAWSSM(ctx context.Context, srv *awssmtest.Server, secrets []seedSecret) error {
	c := srv.Client()
	for _, s := range secrets {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(s.Name)}
		if s.Description != "" {
			in.Description = aws.String(s.Description)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(s.Tags[k])})
		}
		if _, err := c.CreateSecret(ctx, in); err != nil {
			return fmt.Errorf("%w: awssm secret %s: %v", errSeed, s.Name, err)
		}
		for j, v := range s.Versions {
			put := &secretsmanager.PutSecretValueInput{SecretId: aws.String(s.Name), SecretString: v.String, VersionStages: v.Stages}
			if v.ID != "" {
				put.ClientRequestToken = aws.String(v.ID)
			}
			if v.Binary != nil {
				put.SecretBinary, _ = base64.StdEncoding.DecodeString(*v.Binary) // checked by readSeed
			}
			if _, err := c.PutSecretValue(ctx, put); err != nil {
				return fmt.Errorf("%w: awssm secret %s, version %d: %v", errSeed, s.Name, j, err)
			}
		}
	}
	return nil
}

// applyConnect creates the vaults and items.
func applyConnect(srv *onepasswordtest.Server, vaults []seedVault) error {
	for _, v := range vaults {
		id := v.ID
		if id == "" {
			id = srv.AddVault(v.Name)
		} else if err := srv.AddVaultWithID(id, v.Name); err != nil {
			return fmt.Errorf("%w: connect vault %s: %v", errSeed, v.Name, err)
		}
		for _, it := range v.Items {
			item := op.Item{ID: it.ID, Title: it.Title, Category: op.ItemCategory(it.Category), Tags: it.Tags}
			if item.Category == "" {
				item.Category = op.ApiCredential
			}
			for _, f := range it.Fields {
				field := &op.ItemField{ID: f.ID, Label: f.Label, Type: op.ItemFieldType(f.Type),
					Purpose: op.ItemFieldPurpose(f.Purpose), Value: f.Value}
				if field.ID == "" {
					field.ID = f.Label
				}
				if field.Type == "" {
					field.Type = op.FieldTypeString
				}
				item.Fields = append(item.Fields, field)
			}
			if _, err := srv.CreateItem(id, item); err != nil {
				return fmt.Errorf("%w: connect vault %s, item %s: %v", errSeed, v.Name, it.Title, err)
			}
		}
	}
	return nil
}
