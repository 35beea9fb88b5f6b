// Package oidcissuer is a local OpenID Connect issuer for tests.
//
// It speaks the real protocol over HTTPS: a discovery document at
// <issuer>/.well-known/openid-configuration and a JSON Web Key Set with RSA and
// EC keys at the advertised jwks_uri, served with a certificate from a test CA
// generated at start. Tests mint tokens shaped like Keycloak or Microsoft Entra
// ID tokens with Issue, including deliberately bad ones (expired, wrong
// audience, unknown or wrong key, alg "none", HMAC keyed with the public key),
// rotate keys mid-test with Rotate, simulate an outage with Stop and Start, and
// assert on the number of JWKS downloads with JWKSRequests.
//
// The package has no dependency on the testing package so the end-to-end
// harness can use it from godog steps as well as from unit tests.
package oidcissuer
