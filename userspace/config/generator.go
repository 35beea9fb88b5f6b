package config

import (
	"errors"
	"fmt"
	"strings"
)

// Generator is the masking file generator's section (CONFIG_GENERATOR_*):
// pgproxy generate-config, or pgproxy with CONFIG_GENERATOR_MODE=true,
// scans PG_BACKEND_URL's database and writes MASKING_CONFIG_PATH.
type Generator struct {
	// Mode is CONFIG_GENERATOR_MODE: pgproxy without a command runs the
	// generator instead of the proxy.
	Mode bool
	// AllSchemas is CONFIG_GENERATOR_SCHEMAS=all: every schema but the
	// system ones (pg_catalog, information_schema, pg_toast, temporary).
	AllSchemas bool
	// Schemas is the comma list of CONFIG_GENERATOR_SCHEMAS (nil with
	// AllSchemas).
	Schemas []string
	// LLM is CONFIG_GENERATOR_LLM: ask the configured model about the
	// columns the detectors cannot decide; LLMSamples is
	// CONFIG_GENERATOR_LLM_SAMPLES: send it sampled values too.
	LLM, LLMSamples bool
}

// loadGenerator parses the generator's section.
func loadGenerator(p *parser) Generator {
	g := Generator{Mode: p.bool("CONFIG_GENERATOR_MODE"), LLM: p.bool("CONFIG_GENERATOR_LLM"), LLMSamples: p.bool("CONFIG_GENERATOR_LLM_SAMPLES")}
	var err error
	if g.AllSchemas, g.Schemas, err = ParseGeneratorSchemas(p.str("CONFIG_GENERATOR_SCHEMAS")); err != nil {
		p.fail("CONFIG_GENERATOR_SCHEMAS", err.Error())
	}
	return g
}

// LoadGenerator reads the generator's section alone through getenv (the
// command dispatch asks it before the whole configuration is loaded).
func LoadGenerator(getenv func(string) string) (Generator, error) {
	p := &parser{getenv: getenv}
	g := loadGenerator(p)
	return g, errors.Join(p.errs...)
}

// ParseGeneratorSchemas reads a CONFIG_GENERATOR_SCHEMAS value: "all", or a
// comma list of schema names (matched exactly, as the catalog spells them).
// An empty value is public.
func ParseGeneratorSchemas(v string) (all bool, schemas []string, err error) {
	list := SplitList(v)
	if len(list) == 0 {
		return false, []string{"public"}, nil
	}
	for _, s := range list {
		if strings.EqualFold(s, "all") {
			if len(list) > 1 {
				return false, nil, fmt.Errorf("=%q: all already names every schema; give all alone or a list of schemas", v)
			}
			return true, nil, nil
		}
	}
	return false, list, nil
}
