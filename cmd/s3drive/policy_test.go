package main

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFolderPolicy: the policy allows listing only under the folder,
// reading and writing only keys in it, nothing bucket-wide beyond the
// conditioned listing; --read-only drops every write.
func TestFolderPolicy(t *testing.T) {
	doc := folderPolicy("firm", "clients/acme", false, "")
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) || doc.Version != "2012-10-17" {
		t.Fatalf("not an IAM policy document: %s", raw)
	}
	var actions []string
	for _, s := range doc.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: effect %s", s.Sid, s.Effect)
		}
		for _, a := range s.Action {
			actions = append(actions, a)
			switch {
			case a == "s3:ListBucket":
				if s.Resource != "arn:aws:s3:::firm" || !strings.Contains(string(mustJSON(t, s.Condition)), `"s3:prefix":["clients/acme/","clients/acme/*"]`) {
					t.Errorf("listing not held to the folder: %+v", s)
				}
			case s.Resource != "arn:aws:s3:::firm/clients/acme/*":
				t.Errorf("%s on %s, want only keys under the folder", a, s.Resource)
			}
		}
	}
	slices.Sort(actions)
	want := []string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"}
	if !slices.Equal(actions, want) {
		t.Errorf("actions %v, want %v", actions, want)
	}
	for _, s := range folderPolicy("firm", "clients/acme", true, "").Statement {
		for _, a := range s.Action {
			if a != "s3:ListBucket" && a != "s3:GetObject" {
				t.Errorf("--read-only allows %s", a)
			}
		}
	}
	if s := folderPolicy("firm", "", false, "").Statement[0]; s.Condition != nil {
		t.Errorf("a whole-bucket mount's listing has a condition: %+v", s)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBucketPolicyNamesThePrincipal(t *testing.T) {
	for _, s := range folderPolicy("firm", "clients/acme", false, "arn:aws:iam::123456789012:user/acme").Statement {
		if got := s.Principal["AWS"]; !reflect.DeepEqual(got, []string{"arn:aws:iam::123456789012:user/acme"}) {
			t.Errorf("statement %s grants %v", s.Sid, got)
		}
	}
}
