package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's tables of variables and Vars must not drift apart. A table
// of variables is one whose first header cell is "variable"; it belongs to
// the section whose title appears in the nearest heading above it (backticks
// dropped, any letter case). Each row names one or more variables in its
// first cell and gives their default in the second:
//
//   - `value` for a default, or `a`, `b`, `c` for one each when the row
//     names several variables (a single `value` then applies to all);
//   - — for no default, optionally followed by what an empty value means in
//     parentheses: — (required), — (the cgroup2 root).

// readmeRow is one row of a table of variables.
type readmeRow struct {
	line     int
	section  Section
	names    []string
	defaults []string // one per name
}

var (
	varName   = regexp.MustCompile(`[A-Z][A-Z0-9]*(_[A-Z0-9]+)+`)
	backticks = regexp.MustCompile("^`([^`]*)`$")
	noDefault = regexp.MustCompile(`^—( \([^()]+\))?$`)
)

func TestREADMEVariablesMatchVars(t *testing.T) {
	rows := readmeVariableRows(t, "../../README.md")
	inOwnSection := map[string]bool{}
	for _, r := range rows {
		for i, name := range r.names {
			if !Known(name) {
				t.Errorf("README.md:%d: %s is not in config.Vars", r.line, name)
				continue
			}
			if want := defaultOf(name, r.section == SectionAgent); r.defaults[i] != want {
				t.Errorf("README.md:%d: %s default %q, config.Vars says %q (%s)", r.line, name, r.defaults[i], want, r.section)
			}
			if sectionOf(name, r.section) {
				inOwnSection[name] = true
			}
		}
	}
	for _, v := range append(Vars[:len(Vars):len(Vars)], agentVars...) {
		if !inOwnSection[v.Name] {
			t.Errorf("%s (%s) is in no README table of variables under a heading containing %q", v.Name, v.Section, v.Section)
		}
	}
}

// sectionOf reports whether name is listed in section s, in Vars or agentVars.
func sectionOf(name string, s Section) bool {
	for _, v := range append(Vars[:len(Vars):len(Vars)], agentVars...) {
		if v.Name == name && v.Section == s {
			return true
		}
	}
	return false
}

// readmeVariableRows reads the rows of every table of variables in path.
func readmeVariableRows(t *testing.T, path string) []readmeRow {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		rows     []readmeRow
		headings []string // by level, "" where there is none
		fence    bool
		inTable  bool // inside a table of variables, past its header
		section  Section
	)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		if level := len(line) - len(strings.TrimLeft(line, "#")); level > 0 && strings.HasPrefix(line[level:], " ") {
			for len(headings) < level-1 {
				headings = append(headings, "")
			}
			headings = append(headings[:level-1], strings.TrimSpace(line[level:]))
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := splitRow(line)
		switch {
		case strings.EqualFold(cells[0], "variable"):
			inTable, section = true, tableSection(headings)
			if section == "" {
				t.Errorf("README.md:%d: table of variables under %q, a heading that names no section", n, headings)
			}
			continue
		case !inTable || strings.HasPrefix(cells[0], "---"):
			continue
		}
		r := readmeRow{line: n, section: section, names: varName.FindAllString(cells[0], -1)}
		if len(r.names) == 0 || len(cells) < 3 {
			t.Errorf("README.md:%d: a row of a table of variables without a variable", n)
			continue
		}
		r.defaults, err = parseDefaults(cells[1], len(r.names))
		if err != nil {
			t.Errorf("README.md:%d: default %q: %v", n, cells[1], err)
			continue
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no table of variables")
	}
	return rows
}

// tableSection is the section named by the nearest heading that names one.
func tableSection(headings []string) Section {
	for i := len(headings) - 1; i >= 0; i-- {
		h := strings.ToLower(strings.ReplaceAll(headings[i], "`", ""))
		for _, v := range Vars {
			if strings.Contains(h, strings.ToLower(string(v.Section))) {
				return v.Section
			}
		}
	}
	return ""
}

func splitRow(line string) []string {
	cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// parseDefaults reads a default cell for n variables.
func parseDefaults(cell string, n int) ([]string, error) {
	if noDefault.MatchString(cell) {
		return make([]string, n), nil
	}
	var values []string
	for part := range strings.SplitSeq(cell, ", ") {
		m := backticks.FindStringSubmatch(part)
		if m == nil {
			return nil, fmt.Errorf("write `value`, `a`, `b` for several variables, or — (what empty means)")
		}
		values = append(values, m[1])
	}
	switch len(values) {
	case n:
		return values, nil
	case 1:
		all := make([]string, n)
		for i := range all {
			all[i] = values[0]
		}
		return all, nil
	}
	return nil, fmt.Errorf("%d defaults for %d variables", len(values), n)
}
