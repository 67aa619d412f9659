// etcdtls.go: the client side of etcd's TLS for the bench's etcd load generators (kvload-tls.go
// and kvread.go, beside this file; kv-sbs.sh builds it into each of them). One place for the
// flags and for the rule on endpoint schemes, so that both generators speak TLS the same way.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// tlsFlags are -cacert, -cert and -key (Go's flag package also takes them as --cacert ...).
type tlsFlags struct{ cacert, cert, key *string }

func registerTLSFlags() tlsFlags {
	return tlsFlags{
		cacert: flag.String("cacert", "", "TLS: trust only this CA certificate (PEM); without it, plain TCP"),
		cert:   flag.String("cert", "", "TLS: the client certificate (PEM) to present, with -key"),
		key:    flag.String("key", "", "TLS: the client certificate's private key (PEM)"),
	}
}

// config is nil when no TLS flag is given (plain TCP, as the harness's kvload). Otherwise the
// members are verified against the -cacert file alone (a bench CA, never the system's roots), and
// -cert/-key, which go together, are presented for the members' --client-cert-auth.
func (f tlsFlags) config() (*tls.Config, error) {
	if *f.cacert == "" && *f.cert == "" && *f.key == "" {
		return nil, nil
	}
	if *f.cacert == "" {
		return nil, errors.New("-cert and -key need -cacert (the CA the members' certificates are checked against)")
	}
	if (*f.cert == "") != (*f.key == "") {
		return nil, errors.New("-cert and -key go together")
	}
	pem, err := os.ReadFile(*f.cacert)
	if err != nil {
		return nil, fmt.Errorf("-cacert: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-cacert: no PEM certificate in %s", *f.cacert)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if *f.cert != "" {
		pair, err := tls.LoadX509KeyPair(*f.cert, *f.key)
		if err != nil {
			return nil, fmt.Errorf("-cert/-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// endpoints splits the comma-separated list and gives each endpoint the scheme that matches the
// transport. clientv3 (3.4) dials an endpoint without a scheme in plain TCP even when its Config
// carries TLS, so with TLS a bare host:port becomes https://host:port and an http:// endpoint is
// an error; without TLS, an https:// endpoint is an error (clientv3 would quietly trust the
// system's roots).
func endpoints(list string, secure bool) ([]string, error) {
	var out []string
	for _, ep := range strings.Split(list, ",") {
		switch {
		case ep == "":
			return nil, fmt.Errorf("-endpoints %q: an empty endpoint", list)
		case strings.HasPrefix(ep, "https://") && !secure:
			return nil, fmt.Errorf("-endpoints: %s needs -cacert", ep)
		case strings.HasPrefix(ep, "http://") && secure:
			return nil, fmt.Errorf("-endpoints: %s is plain TCP, but TLS flags were given", ep)
		case secure && !strings.Contains(ep, "://"):
			ep = "https://" + ep
		}
		out = append(out, ep)
	}
	return out, nil
}
