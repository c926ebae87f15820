package signer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokenkms/tokenkms"
	"github.com/tokenkms/tokenkms/keyring"
	"github.com/tokenkms/tokenkms/keyring/keyringtest"
	"github.com/tokenkms/tokenkms/signer"
)

// An Issuer signs RFC 9068 access tokens with the Active key of a
// keyring's set. It fills iss, aud, iat, nbf, exp and jti; the caller
// gives the subject, the client, the principal type and the scopes.
func ExampleIssuer_Issue() {
	ctx := context.Background()
	clock := keyringtest.NewClock(keyringtest.Start) // a host leaves Now nil
	ring, err := keyring.New(ctx, keyring.Config{
		Now:  clock.Now,
		Sets: []keyring.SetPolicy{{Name: "access-tokens", Owner: "team-identity", Algorithm: "EdDSA"}},
	})
	if err != nil {
		panic(err)
	}
	if _, err := keyringtest.ActivateFirst(ctx, ring, "access-tokens"); err != nil {
		panic(err)
	}
	issuer, err := signer.NewIssuer(ring, signer.IssuerConfig{
		Set: "access-tokens", Issuer: "https://core.example", Audience: []string{"orders-api"},
		DefaultLifetime: 15 * time.Minute, MaxLifetime: time.Hour, Now: clock.Now,
	})
	if err != nil {
		panic(err)
	}
	token, err := issuer.Issue(ctx, tokenkms.Claims{
		Subject: "user-1", ClientID: "web", PrincipalType: "user", Scope: []string{"orders:read", "orders:write"},
	})
	if err != nil {
		panic(err)
	}

	parts := strings.Split(token, ".")
	var header struct{ Alg, Typ string }
	var claims struct {
		Iss, Sub, Aud, Scope, JTI string
		ClientID                  string `json:"client_id"`
		PrincipalType             string `json:"principal_type"`
		Iat, Exp                  int64
	}
	decode := func(part string, v any) {
		raw, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil {
			panic(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			panic(err)
		}
	}
	decode(parts[0], &header)
	decode(parts[1], &claims)
	fmt.Println("header:", header.Alg, header.Typ)
	fmt.Println("iss:", claims.Iss, "sub:", claims.Sub, "aud:", claims.Aud)
	fmt.Println("client_id:", claims.ClientID, "principal_type:", claims.PrincipalType, "scope:", claims.Scope)
	fmt.Println("lifetime:", time.Duration(claims.Exp-claims.Iat)*time.Second, "jti set:", claims.JTI != "")
	// Output:
	// header: EdDSA at+jwt
	// iss: https://core.example sub: user-1 aud: orders-api
	// client_id: web principal_type: user scope: orders:read orders:write
	// lifetime: 15m0s jti set: true
}
