package aws

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func staticKey(k harness.AWSKey) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(k.ID, k.Secret, k.Token)
}
