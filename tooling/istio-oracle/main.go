// istio-oracle compiles Istio configuration with Istio's own control-plane code and prints what this
// repository's ingress gateway would receive, plus Istio's simulated routing decision for given requests.
//
// Protocol: one JSON object per line on stdin, one JSON object per line on stdout (see README.md).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	istiolog "istio.io/istio/pkg/log"
)

// istioTag is the Istio release the pinned istio.io/istio pseudo-version was cut from (versions.env's
// ISTIO_GO_TAG); build.sh sets it with -ldflags. It is also the version the simulated gateway proxy reports.
var istioTag = "1.31.0"

const istioModule = "istio.io/istio"

func istioModuleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == istioModule {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}

// silenceIstio sends Istio's logging (and klog, gRPC and the standard logger, which it captures) to
// stderr at the level ISTIO_ORACLE_LOG names, none by default, so stdout carries only protocol lines.
func silenceIstio() error {
	opts := istiolog.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	level := istiolog.NoneLevel
	if l := os.Getenv("ISTIO_ORACLE_LOG"); l != "" {
		level = istiolog.StringToLevel(l)
	}
	opts.SetDefaultOutputLevel(istiolog.OverrideScopeName, level)
	if err := istiolog.Configure(opts); err != nil {
		return err
	}
	for _, s := range istiolog.Scopes() {
		s.SetOutputLevel(level)
	}
	return nil
}

// decodeInput parses one protocol line. The id is returned whenever the line is a JSON object with one.
func decodeInput(line []byte) (Input, error) {
	var in Input
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return in, fmt.Errorf("not a JSON object: %v", err)
	}
	in.ID = fields["id"]
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var full Input
	if err := dec.Decode(&full); err != nil {
		return in, err
	}
	if _, ok := fields["config"]; !ok {
		return in, fmt.Errorf(`"config" is required`)
	}
	full.ID = in.ID
	return full, nil
}

func serve(r io.Reader, w io.Writer) error {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for scanner.Scan() {
		line := bytes.TrimSpace(scanner.Bytes())
		if len(line) == 0 {
			continue
		}
		var answer any
		in, err := decodeInput(line)
		if err != nil {
			answer = fail(in.ID, nil, "input: "+err.Error())
		} else {
			answer = runCase(in)
		}
		if err := enc.Encode(answer); err != nil {
			return err
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return scanner.Err()
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--version", "-version", "version":
			fmt.Printf("%s %s (Istio %s)\n", istioModule, istioModuleVersion(), istioTag)
			return
		default:
			fmt.Fprintf(os.Stderr, "usage: istio-oracle [--version] < cases.jsonl > results.jsonl\n")
			os.Exit(2)
		}
	}
	if err := silenceIstio(); err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle: configuring Istio's logging:", err)
		os.Exit(1)
	}
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle:", err)
		os.Exit(1)
	}
}
