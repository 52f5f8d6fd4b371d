package main

import (
	"crypto"
	"fmt"
	"path/filepath"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/ops"
)

// preflightPolicy is the pre-flight policy every flash command applies:
// --force from the command line and the signing key from the config file.
func (c *cli) preflightPolicy(cm *common) (ops.Policy, error) {
	cfg, err := config.Load(cm.config, c.getenv)
	if err != nil {
		return ops.Policy{}, err
	}
	p, err := signingPolicy(cfg.Defaults.SigningKey)
	p.Force = cm.force
	return p, err
}

// signingPolicy loads the configured signing key (none: no key policy).
func signingPolicy(path string) (ops.Policy, error) {
	if path == "" {
		return ops.Policy{}, nil
	}
	data, err := ops.ReadInputFile(path, ops.MaxKeyFile)
	if err != nil {
		return ops.Policy{}, fmt.Errorf("signing key from the config file: %w", err)
	}
	key, err := firmware.ParsePublicKeyPEM(data)
	if err != nil {
		return ops.Policy{}, fmt.Errorf("signing key %s: %w", filepath.Base(path), err)
	}
	return ops.Policy{SigningKeys: []crypto.PublicKey{key}}, nil
}
