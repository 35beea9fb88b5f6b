package config

import (
	"fmt"
	"os"
	"strings"
)

// Masking is the data masking section (MASKING_*).
type Masking struct {
	Enabled    bool
	ConfigPath string
	// HMACKey is the keyed hash's key, from MASKING_HMAC_KEY or the file
	// MASKING_HMAC_KEY_FILE (nil when neither is set). Never logged.
	HMACKey []byte
}

// minHMACKey is the shortest keyed-hash key accepted, in bytes.
const minHMACKey = 16

// loadMasking parses the masking section.
func loadMasking(p *parser) Masking {
	m := Masking{Enabled: p.bool("MASKING_ENABLED"), ConfigPath: p.str("MASKING_CONFIG_PATH")}
	key, keyFile := p.str("MASKING_HMAC_KEY"), p.str("MASKING_HMAC_KEY_FILE")
	switch {
	case key != "" && keyFile != "":
		p.fail("MASKING_HMAC_KEY", "and MASKING_HMAC_KEY_FILE are both set: give one")
	case key != "":
		m.HMACKey = []byte(key)
	case keyFile != "":
		data, err := os.ReadFile(keyFile)
		if err != nil {
			p.fail("MASKING_HMAC_KEY_FILE", fmt.Sprintf("cannot be read: %v", err))
		} else {
			m.HMACKey = []byte(strings.TrimRight(string(data), "\r\n"))
		}
	}
	if m.HMACKey != nil && len(m.HMACKey) < minHMACKey {
		p.fail("MASKING_HMAC_KEY", fmt.Sprintf("is %d bytes long; use at least %d (a random key: openssl rand -hex 32)", len(m.HMACKey), minHMACKey))
	}
	if !m.Enabled {
		return m
	}
	if _, err := os.Stat(m.ConfigPath); err != nil {
		p.fail("MASKING_CONFIG_PATH", fmt.Sprintf("cannot be read: %v (write one, or run pgproxy generate-config)", err))
	}
	return m
}
