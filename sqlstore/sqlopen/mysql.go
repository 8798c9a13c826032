package sqlopen

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// parseMySQL turns a mysql:// URL into github.com/go-sql-driver/mysql's
// configuration:
//
//	mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]
//	mysql://USER[:PASSWORD]@/DATABASE?socket=/run/mysqld/mysqld.sock
//
// PARAMS are the driver's own (tls, timeout, readTimeout, charset, …) or
// system variables to set on each connection, as in its DSNs. Open
// always reads times as UTC (loc=UTC, parseTime=true) and sets the
// session's time_zone to '+00:00' unless PARAMS set it, so that NOW() in
// an operator's SQL and the Store's times agree. clientFoundRows=true is
// refused: the Store counts changed rows. Errors never repeat the URL.
func parseMySQL(dsn string) (*mysql.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: MySQL URL does not parse", ErrBadDSN)
	}
	if u.Opaque != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: want mysql://user:password@host:port/database", ErrBadDSN)
	}
	query := u.Query()
	socket := query.Get("socket")
	query.Del("socket")
	// The driver reads its parameters, and refuses bad values, as it
	// would in its own DSN form.
	cfg, err := mysql.ParseDSN("/?" + query.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: MySQL URL parameters do not parse", ErrBadDSN)
	}
	switch {
	case socket != "" && u.Host != "":
		return nil, fmt.Errorf("%w: MySQL URL has both a host and a socket", ErrBadDSN)
	case socket != "" && (!strings.HasPrefix(socket, "/") || strings.ContainsAny(socket, "@()?")):
		// The driver's DSN cannot carry these: "unix(@)/db" does not parse.
		return nil, fmt.Errorf("%w: MySQL socket must be an absolute path without '@', '(', ')' or '?'", ErrBadDSN)
	case socket != "":
		cfg.Net, cfg.Addr = "unix", socket
	case u.Hostname() == "":
		return nil, fmt.Errorf("%w: MySQL URL needs a host (or ?socket=PATH)", ErrBadDSN)
	default:
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, fmt.Errorf("%w: MySQL URL needs a database name (mysql://host/database)", ErrBadDSN)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	if cfg.ClientFoundRows {
		return nil, fmt.Errorf("%w: clientFoundRows=true is not supported (the Store counts changed rows)", ErrBadDSN)
	}
	cfg.Loc = time.UTC
	cfg.ParseTime = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if cfg.Params["time_zone"] == "" { // absent, or given empty: UTC
		cfg.Params["time_zone"] = "'+00:00'"
	}
	return cfg, nil
}
