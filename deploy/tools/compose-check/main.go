// compose-check loads a compose file the way `docker compose config` does, with compose-spec/compose-go (the loader
// Docker Compose itself uses): schema validation, interpolation, profiles, env files and the dependency graph. It
// needs no Docker engine, which this machine does not have. It prints the resolved project as JSON, for
// tests/deploy/test_compose.py to read; a file compose would refuse makes it exit 1 with compose's message.
//
//	compose-check [--env-file FILE]... [--profile NAME]... docker-compose.yml
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

type repeated []string

func (r *repeated) String() string     { return fmt.Sprint(*r) }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	var envFiles, profiles repeated
	flag.Var(&envFiles, "env-file", "an env file, as docker compose --env-file (repeatable)")
	flag.Var(&profiles, "profile", "a profile to enable, as docker compose --profile (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [--env-file FILE]... [--profile NAME]... COMPOSE_FILE")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		flag.Args(),
		cli.WithName("kapnet"),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithOsEnv,
		// After the env files, as docker compose reads COMPOSE_PROFILES from them.
		cli.WithDefaultProfiles(profiles...),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.Marshal(project)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Stdout.Write(out)
}
