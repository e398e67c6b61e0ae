// Egress proxy for Keycloak: Stripe's smokescreen (v0.1.0) with one extra rule.
//
// Keycloak fetches URLs that clients choose (CIMD documents, jwks_uri). smokescreen refuses
// every destination that resolves to a loopback, private, link-local (cloud metadata), CGNAT or
// IPv4-embedding IPv6 address, after DNS resolution (MCP AS6, CIMD -02 SSRF considerations).
// The rule added here: only HTTPS tunnels (CONNECT) to the allowed ports; a plain-HTTP proxy
// request or a CONNECT to any other port is refused before DNS is even consulted.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stripe/smokescreen/cmd"
	"github.com/stripe/smokescreen/pkg/smokescreen"
	acl "github.com/stripe/smokescreen/pkg/smokescreen/acl/v1"
)

// httpsOnly refuses, before any DNS lookup, what is not an HTTPS tunnel to a host name on an
// allowed port.
// It lives in RoleFromRequest, which smokescreen calls first for every request: its error is
// logged ("Unable to get role for request") and the request denied before any DNS lookup.
func httpsOnly(ports map[string]bool) func(*http.Request) (string, error) {
	return func(req *http.Request) (string, error) {
		if req.Method != http.MethodConnect {
			return "", fmt.Errorf("plain HTTP to %s refused: HTTPS (CONNECT) only", req.Host)
		}
		// A client-chosen next hop (smokescreen/goproxy honour X-Upstream-Https-Proxy) would be
		// dialled without the address checks: refused, whoever sends it.
		if req.Header.Get("X-Upstream-Https-Proxy") != "" {
			return "", fmt.Errorf("CONNECT %s refused: X-Upstream-Https-Proxy is not accepted", req.Host)
		}
		host, port, err := net.SplitHostPort(req.Host)
		if err != nil || !ports[port] {
			return "", fmt.Errorf("CONNECT %s refused: port not in EGRESS_ALLOWED_PORTS", req.Host)
		}
		// URLs a client may choose name a host; an IP literal is refused outright, so every
		// destination goes through the same resolve-then-check path.
		if net.ParseIP(host) != nil {
			return "", fmt.Errorf("CONNECT %s refused: IP literal, names only", req.Host)
		}
		return "keycloak", nil
	}
}

// allowAll is the ACL once httpsOnly has passed a request; the address checks still follow.
type allowAll struct{}

func (allowAll) Decide(acl.DecideArgs) (acl.Decision, error) {
	return acl.Decision{Result: acl.Allow, Reason: "HTTPS to an allowed port"}, nil
}

// healthcheck: the image has no shell; `egress healthcheck` checks the listener answers.
func healthcheck(addr string) int {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conn.Close()
	return 0
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck("127.0.0.1:4750"))
	}
	ports := map[string]bool{}
	for _, p := range strings.Split(os.Getenv("EGRESS_ALLOWED_PORTS"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			ports[p] = true
		}
	}
	if len(ports) == 0 {
		ports["443"] = true
	}
	conf, err := cmd.NewConfiguration(nil, nil)
	if err != nil {
		logrus.Fatalf("egress: invalid configuration: %v", err)
	}
	if conf == nil {
		return // --help
	}
	// One caller (Keycloak) and one policy: no client certificates, no per-role rules.
	conf.RoleFromRequest = httpsOnly(ports)
	conf.EgressACL = allowAll{}
	conf.Log.Formatter = &logrus.JSONFormatter{}
	log.SetOutput(&smokescreen.Log2LogrusWriter{Entry: conf.Log.WithField("stdlog", "1")})
	log.SetFlags(0)
	smokescreen.StartWithConfig(conf, nil)
}
