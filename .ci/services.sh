# Sourced by .ci/run (and usable by hand: `source .ci/services.sh;
# start_postgres; start_redis`). Each function installs its server from
# the distribution's packages if it is missing, starts a throwaway
# instance on 127.0.0.1 and a free port, exports the address the tests
# read, and registers a stop for when the shell exits.

_apikey_stops=()
_apikey_stop_all() {
	local s
	for s in "${_apikey_stops[@]}"; do eval "$s" >/dev/null 2>&1 || true; done
}
trap _apikey_stop_all EXIT

_apt_updated=""
_apt_install() {
	if [ -z "$_apt_updated" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		_apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# _free_port prints a TCP port on 127.0.0.1 that nothing listens on.
_free_port() {
	local p
	for p in $(shuf -i 20000-40000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# start_postgres exports APIKEY_TEST_POSTGRES, a DSN for a superuser on a
# fresh PostgreSQL cluster in a temporary directory.
start_postgres() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
		echo "installing postgresql"
		_apt_install postgresql
		bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	fi
	id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
	local dir port
	dir=$(mktemp -d /tmp/apikey-pg.XXXXXX)
	chown postgres "$dir"
	port=$(_free_port)
	# initdb refuses to run as root, so the cluster belongs to postgres.
	su postgres -s /bin/sh -c "'$bin/initdb' -D '$dir/data' -U postgres -A trust --no-sync -E UTF8 >'$dir/initdb.log' 2>&1" ||
		{ cat "$dir/initdb.log"; return 1; }
	su postgres -s /bin/sh -c "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 \
		-o \"-h 127.0.0.1 -p $port -k '$dir' -F -c max_connections=200\" start >/dev/null" ||
		{ cat "$dir/server.log"; return 1; }
	_apikey_stops+=("su postgres -s /bin/sh -c \"'$bin/pg_ctl' -D '$dir/data' -m immediate stop\"; rm -rf '$dir'")
	export APIKEY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at 127.0.0.1:$port"
}

# start_redis exports APIKEY_TEST_REDIS (or the variable named by its
# argument), a redis:// URL of a fresh Redis without persistence. Tests
# that count the server's commands need a server of their own, hence
# the choice of name.
start_redis() {
	local var="${1:-APIKEY_TEST_REDIS}"
	if ! command -v redis-server >/dev/null 2>&1; then
		echo "installing redis-server"
		_apt_install redis-server
	fi
	local dir port
	dir=$(mktemp -d /tmp/apikey-redis.XXXXXX)
	port=$(_free_port)
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
	local i
	for i in $(seq 1 100); do
		redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
		sleep 0.1
	done
	redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG || { cat "$dir/redis.log"; return 1; }
	_apikey_stops+=("redis-cli -h 127.0.0.1 -p $port shutdown nosave; rm -rf '$dir'")
	export "$var=redis://127.0.0.1:$port/0"
	echo "Redis $(redis-server --version | awk '{print $3}') at 127.0.0.1:$port"
}

# start_chromium exports APIKEY_TEST_CHROMIUM, the path of Debian's
# Chromium, for the portal's browser test (browsertest/), which starts it
# headless itself. Nothing runs between tests, so there is nothing to stop.
start_chromium() {
	if ! command -v chromium >/dev/null 2>&1; then
		echo "installing chromium"
		_apt_install chromium
	fi
	export APIKEY_TEST_CHROMIUM="$(command -v chromium)"
	echo "$("$APIKEY_TEST_CHROMIUM" --version 2>/dev/null) at $APIKEY_TEST_CHROMIUM"
}

# start_gitleaks exports APIKEY_TEST_GITLEAKS, the path of a gitleaks
# binary built from the Go module proxy at a pinned version (it is no
# server, and no dependency of any module here: go install builds it in
# a module of its own), for the test of the rules apikey patterns prints.
APIKEY_GITLEAKS_VERSION="${APIKEY_GITLEAKS_VERSION:-v8.30.1}"
start_gitleaks() {
	local dir
	dir=$(mktemp -d /tmp/apikey-gitleaks.XXXXXX)
	GOFLAGS= GOBIN="$dir" go install "github.com/zricethezav/gitleaks/v8@$APIKEY_GITLEAKS_VERSION" || return 1
	_apikey_stops+=("rm -rf '$dir'")
	export APIKEY_TEST_GITLEAKS="$dir/gitleaks"
	echo "gitleaks $APIKEY_GITLEAKS_VERSION at $APIKEY_TEST_GITLEAKS"
}
