package config

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/joho/godotenv"
)

// ReadDotEnv returns the variables of a .env file; a missing file is no error.
func ReadDotEnv(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	vars, err := godotenv.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return vars, nil
}
