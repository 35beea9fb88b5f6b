package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/tests/oidcissuer"
)

// jwksMinRefresh is identity.DefaultJWKSMinRefreshInterval, the documented rate limit on key
// set downloads; it is not configurable, so the scenarios wait it out.
const jwksMinRefresh = 10 * time.Second

func (w *world) registerKeySteps(sc *godog.ScenarioContext) {
	sc.Step(`^the issuer rotates its RS256 key and withdraws the old one$`, w.rotate)
	sc.Step(`^the token minted with the withdrawn key$`, w.withdrawnToken)
	sc.Step(`^the issuer's JWKS download count is noted$`, w.markJWKS)
	sc.Step(`^the login was accepted at least (\d+) seconds after the proxy started$`, w.acceptedAfter)
	sc.Step(`^the issuer served exactly (\d+) JWKS downloads? since it was noted$`, w.jwksExactly)
	sc.Step(`^the issuer served at most one JWKS download per 10 seconds since it was noted, plus one$`, w.jwksRateBounded)
	sc.Step(`^(\d+) seconds pass$`, func(secs int) error {
		time.Sleep(time.Duration(secs) * time.Second)
		return nil
	})
	sc.Step(`^(\d+) logins with tokens signed by unknown keys start, (\d+) at a time$`, w.startFlood)
	sc.Step(`^the logins with unknown keys have ended$`, w.floodEnded)
	sc.Step(`^every one of them is refused with SQLSTATE (\w+) and a message containing "(.*)"$`, w.floodRefused)
}

// rotate mints a token with the current RS256 key (kept for "the token minted with the
// withdrawn key"), then replaces the key: the JWKS no longer lists the old one.
func (w *world) rotate() error {
	claims := oidcissuer.KeycloakClaims(oidcissuer.KeycloakUser{Email: "before-rotation@example.com", ClientID: audience})
	tok, err := w.issuer.Issue(claims, oidcissuer.IssueOptions{})
	if err != nil {
		return err
	}
	w.retiredToken = tok
	old := w.issuer.ActiveKeyID("RS256")
	if _, err := w.issuer.Rotate("RS256", false); err != nil {
		return err
	}
	for _, kid := range w.issuer.KeyIDs() {
		if kid == old {
			return fmt.Errorf("old key %s still published", old)
		}
	}
	return nil
}

// withdrawnToken presents the token signed, before the rotation, with the withdrawn key.
func (w *world) withdrawnToken() error {
	if w.retiredToken == "" {
		return errors.New("no key was withdrawn")
	}
	w.present(w.retiredToken)
	return nil
}

func (w *world) markJWKS() error {
	w.jwksMark = w.issuer.JWKSRequests()
	w.markTime = time.Now()
	return nil
}

// acceptedAfter checks that the last successful login came at least secs seconds after the
// proxy was started: a login that needed the next key download waited for the rate limit.
func (w *world) acceptedAfter(secs int) error {
	if d := w.acceptedAt.Sub(w.proxyStart); d < time.Duration(secs)*time.Second {
		return fmt.Errorf("accepted %.1f s after the proxy started: the key set was downloaded again sooner than the documented %s rate limit",
			d.Seconds(), jwksMinRefresh)
	}
	return nil
}

func (w *world) jwksExactly(n int) error {
	if got := w.issuer.JWKSRequests() - w.jwksMark; got != int64(n) {
		return fmt.Errorf("%d JWKS downloads since noted, want %d", got, n)
	}
	return nil
}

func (w *world) jwksRateBounded() error {
	elapsed := time.Since(w.markTime)
	allowed := int64(elapsed/jwksMinRefresh) + 1
	got := w.issuer.JWKSRequests() - w.jwksMark
	if got > allowed {
		return fmt.Errorf("%d JWKS downloads in %.1f s, want at most %d", got, elapsed.Seconds(), allowed)
	}
	w.tb.Logf("%d JWKS download(s) in %.1f s", got, elapsed.Seconds())
	return nil
}

// startFlood starts n logins, conc at once, each with an ES256 token signed by a fresh key
// under a kid the issuer never published, and returns without waiting for them ("the logins
// with unknown keys have ended" does). The tokens are made first, so the logins come together.
// The logins read the world's proxy settings: steps run meanwhile must not change them.
func (w *world) startFlood(n, conc int) error {
	toks := make([]string, n)
	for i := range toks {
		claims := oidcissuer.KeycloakClaims(oidcissuer.KeycloakUser{Email: fmt.Sprintf("mallory%d@example.com", i), ClientID: audience})
		tok, err := w.issuer.Issue(claims, oidcissuer.IssueOptions{Alg: "ES256", Mode: oidcissuer.SignUnknownKey})
		if err != nil {
			return err
		}
		toks[i] = tok
		w.tokens = append(w.tokens, tok)
	}
	w.floodTokens = toks
	w.floodErrs = make([]error, n)
	w.floodLeft.Store(int64(n))
	done := make(chan struct{})
	w.floodDone = done
	w.floodStart = time.Now()
	go w.runFlood(toks, conc, done)
	return nil
}

// runFlood is the flood's goroutine: it runs the logins, conc at once, and closes done.
func (w *world) runFlood(toks []string, conc int, done chan<- struct{}) {
	defer close(done)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, tok := range toks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			w.floodErrs[i] = w.floodLogin(tok)
			w.floodLeft.Add(-1)
		})
	}
	wg.Wait()
}

// floodEnded waits for the flood's logins, which a client would have given up on after a
// minute.
func (w *world) floodEnded() error {
	if w.floodDone == nil {
		return errors.New("no flood was started")
	}
	select {
	case <-w.floodDone:
	case <-time.After(time.Minute):
		return fmt.Errorf("%d flood logins still running after a minute", w.floodLeft.Load())
	}
	w.tb.Logf("%d logins with unknown keys took %.1f s", len(w.floodTokens), time.Since(w.floodStart).Seconds())
	return nil
}

// floodLogin tries one login with tok; nil means it was accepted.
func (w *world) floodLogin(tok string) error {
	cfg, err := w.pgxConfig(harness.TestDB, "verify-full")
	if err != nil {
		return err
	}
	cfg.Password = tok
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = conn.Close(ctx)
	}
	return err
}

func (w *world) floodRefused(code, text string) error {
	for i, err := range w.floodErrs {
		if err == nil {
			return fmt.Errorf("login %d with an unknown key was accepted", i)
		}
		if err := checkRefusal(err, w.floodTokens[i], code, text); err != nil {
			return fmt.Errorf("login %d: %w", i, err)
		}
	}
	return nil
}
