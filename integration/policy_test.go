package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3drive/s3drive/integration/s3server"
)

// TestLeastPrivilegePolicy: a user whose only grant is what s3drive policy
// prints for clients/acme (as a bucket policy naming them: versitygw has
// no identity policies) can mount that folder and use it, and a mount of
// clients/beta with the same credentials fails with one line naming
// clients/beta and the permission it lacks.
func TestLeastPrivilegePolicy(t *testing.T) {
	need(t)
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "iam"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv, err := s3server.Start(env.vgw, filepath.Join(root, "s3"), "--iam-dir", filepath.Join(root, "iam"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	const user, userSecret = "acme-user", "acme-user-secret"
	if out, err := exec.Command(env.vgw, "admin", "-a", s3server.AccessKey, "-s", s3server.SecretKey, "--er", srv.Endpoint,
		"create-user", "-a", user, "-s", userSecret, "-r", "user").CombinedOutput(); err != nil {
		t.Fatalf("versitygw admin create-user: %v %s", err, out)
	}
	admin := s3server.Client(srv.Endpoint)
	ctx := context.Background()
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("firm")}); err != nil {
		t.Fatal(err)
	}
	policy, err := s3driveCmd("policy", "s3://firm/clients/acme", "--principal", user)
	if err != nil {
		t.Fatalf("s3drive policy: %v %s", err, policy)
	}
	if _, err := admin.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("firm"), Policy: aws.String(policy)}); err != nil {
		t.Fatalf("PutBucketPolicy of what s3drive policy printed: %v\n%s", err, policy)
	}
	for _, key := range []string{"clients/acme/hello.txt", "clients/beta/secret.txt"} {
		if _, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("firm"), Key: aws.String(key),
			Body: strings.NewReader("for " + key)}); err != nil {
			t.Fatal(err)
		}
	}
	userEnv := append(os.Environ(), "AWS_ACCESS_KEY_ID="+user, "AWS_SECRET_ACCESS_KEY="+userSecret,
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")

	m := startMountAs(t, srv.Endpoint, "s3://firm/clients/acme", "", userEnv)
	if got, err := os.ReadFile(m.path("hello.txt")); err != nil || string(got) != "for clients/acme/hello.txt" {
		t.Errorf("read through the policy: %q, %v", got, err)
	}
	// What a user does in a folder: make one, write, move, remove.
	if err := os.Mkdir(m.path("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "cp", m.path("hello.txt"), m.path("sub/copy.txt"))
	run(t, "mv", m.path("sub/copy.txt"), m.path("sub/moved.txt"))
	run(t, "rm", m.path("hello.txt"))
	run(t, "sync")
	m.unmount()
	out, err := admin.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("firm")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if want := "clients/acme/sub/,clients/acme/sub/moved.txt,clients/beta/secret.txt"; strings.Join(keys, ",") != want {
		t.Errorf("after the user's work S3 holds %v, want %s", keys, want)
	}

	cmd := exec.Command(env.binary, "mount", "--endpoint", srv.Endpoint, "--cache-dir", t.TempDir(), "s3://firm/clients/beta", t.TempDir())
	cmd.Env = userEnv
	msg, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
	if err == nil || len(lines) != 1 || !strings.Contains(lines[0], "s3://firm/clients/beta") || !strings.Contains(lines[0], "s3:ListBucket") {
		t.Errorf("mount of clients/beta with acme's credentials: %v\n%s\nwant one line naming the folder and the permission", err, msg)
	}
}
