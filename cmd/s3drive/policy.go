package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// policyStatement is one statement of an IAM policy document.
type policyStatement struct {
	Sid       string         `json:"Sid"`
	Effect    string         `json:"Effect"`
	Principal map[string]any `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  string         `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

// folderPolicy is the least privilege a mount of bucket/prefix needs: the
// requests s3backend sends, on keys under the folder and nothing above it.
// Listing is a bucket-level permission, so it is held to the folder by an
// s3:prefix condition. Multipart uploads and CopyObject need no action of
// their own beyond PutObject (and GetObject on the source), except the
// abort. No bucket-level call is made: no HeadBucket, no
// ListMultipartUploads.
//
// With a principal, it is a bucket policy granting that principal (an IAM
// ARN on AWS, an access key on servers such as versitygw) the same.
func folderPolicy(bucket, prefix string, readOnly bool, principal string) policyDocument {
	objects := "arn:aws:s3:::" + bucket + "/*"
	var list map[string]any
	if prefix != "" {
		objects = "arn:aws:s3:::" + bucket + "/" + prefix + "/*"
		list = map[string]any{"StringLike": map[string][]string{"s3:prefix": {prefix + "/", prefix + "/*"}}}
	}
	doc := policyDocument{Version: "2012-10-17", Statement: []policyStatement{
		{Sid: "ListTheFolder", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: "arn:aws:s3:::" + bucket, Condition: list},
		{Sid: "ReadTheFolder", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: objects},
	}}
	if !readOnly {
		doc.Statement = append(doc.Statement, policyStatement{Sid: "WriteTheFolder", Effect: "Allow",
			Action: []string{"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}, Resource: objects})
	}
	if principal != "" {
		for i := range doc.Statement {
			doc.Statement[i].Principal = map[string]any{"AWS": []string{principal}}
		}
	}
	return doc
}

func policyCmd() *cobra.Command {
	var (
		readOnly  bool
		principal string
	)
	cmd := &cobra.Command{
		Use:   "policy s3://BUCKET[/PREFIX]",
		Short: "Print the IAM policy that lets a mount of this folder do its work, and nothing above it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, prefix, err := parseS3URL(args[0])
			if err != nil {
				return usageError{err}
			}
			out, err := json.MarshalIndent(folderPolicy(bucket, prefix, readOnly, principal), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(os.Stdout, string(out))
			return err
		},
	}
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "only what a --read-only mount needs: list and read")
	cmd.Flags().StringVar(&principal, "principal", "", "print a bucket policy granting this principal (an IAM user or role ARN; an access key on versitygw, MinIO and the like) instead of an identity policy")
	return cmd
}
