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

# start_mariadb exports APIKEY_TEST_MYSQL, a mysql:// URL (the form
# sqlopen.Open reads) for root on a fresh MariaDB server in a temporary
# directory, with an empty database apikey_test. Tests make a database of
# their own for each case and drop it afterwards. The server runs as
# root (--user=root), on TCP only, without binary logging.
start_mariadb() {
	if ! command -v mariadbd >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; then
		echo "installing mariadb-server"
		_apt_install mariadb-server
	fi
	local dir port
	dir=$(mktemp -d /tmp/apikey-mariadb.XXXXXX)
	port=$(_free_port)
	mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
		--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
		{ cat "$dir/install.log"; return 1; }
	# --no-defaults: nothing from /etc/mysql. The socket lives in the
	# temporary directory, so that it clashes with no other server's.
	mariadbd --no-defaults --user=root --datadir="$dir/data" --bind-address=127.0.0.1 \
		--port="$port" --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" \
		--log-error="$dir/server.log" --skip-log-bin --innodb-buffer-pool-size=64M \
		--innodb-flush-log-at-trx-commit=2 --max-connections=300 \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_bin >/dev/null 2>&1 &
	local i
	for i in $(seq 1 150); do
		mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u root ping >/dev/null 2>&1 && break
		sleep 0.2
	done
	mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u root ping >/dev/null 2>&1 ||
		{ cat "$dir/server.log"; return 1; }
	mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u root -e 'CREATE DATABASE apikey_test' ||
		{ cat "$dir/server.log"; return 1; }
	_apikey_stops+=("kill \$(cat '$dir/mariadb.pid'); for _ in \$(seq 1 100); do [ -e '$dir/mariadb.pid' ] || break; sleep 0.1; done; rm -rf '$dir'")
	export APIKEY_TEST_MYSQL="mysql://root@127.0.0.1:$port/apikey_test"
	echo "MariaDB $(mariadbd --version | awk '{print $3}') at 127.0.0.1:$port"
}

# start_redis_cluster exports APIKEY_TEST_REDIS_CLUSTER, the comma-
# separated addresses (host:port) of a fresh Redis Cluster of three
# masters without replicas or persistence, on loopback. Each node's
# directory holds its nodes.conf and a script, restart.sh, that starts it
# again on the same port with the same configuration: the outage tests
# shut one master down and bring it back. APIKEY_TEST_REDIS_CLUSTER_DIR
# names the directory whose node-PORT subdirectories those are.
start_redis_cluster() {
	if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
		echo "installing redis-server"
		_apt_install redis-server
	fi
	local dir port ports=() addrs=() i
	dir=$(mktemp -d /tmp/apikey-redis-cluster.XXXXXX)
	for i in 1 2 3; do
		port=$(_free_port)
		# The cluster bus listens on port + 10000: both must be free.
		while (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null ||
			printf '%s\n' "${ports[@]}" | grep -qx "$port"; do
			port=$(_free_port)
		done
		mkdir -p "$dir/node-$port"
		cat >"$dir/node-$port/restart.sh" <<-SCRIPT
			#!/bin/sh
			exec redis-server --bind 127.0.0.1 --port $port --cluster-enabled yes \\
				--cluster-config-file '$dir/node-$port/nodes.conf' --cluster-node-timeout 2000 \\
				--save '' --appendonly no --daemonize yes --pidfile '$dir/node-$port/redis.pid' \\
				--logfile '$dir/node-$port/redis.log' --dir '$dir/node-$port'
		SCRIPT
		chmod +x "$dir/node-$port/restart.sh"
		"$dir/node-$port/restart.sh"
		ports+=("$port")
		addrs+=("127.0.0.1:$port")
	done
	for port in "${ports[@]}"; do
		for i in $(seq 1 100); do
			redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
			sleep 0.1
		done
		redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG || { cat "$dir/node-$port/redis.log"; return 1; }
		_apikey_stops+=("redis-cli -h 127.0.0.1 -p $port shutdown nosave")
	done
	_apikey_stops+=("rm -rf '$dir'")
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
		{ cat "$dir/create.log"; return 1; }
	for port in "${ports[@]}"; do
		for i in $(seq 1 200); do
			redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
			sleep 0.1
		done
		redis-cli -h 127.0.0.1 -p "$port" cluster info | grep -q 'cluster_state:ok' ||
			{ redis-cli -h 127.0.0.1 -p "$port" cluster info; cat "$dir/create.log"; return 1; }
	done
	export APIKEY_TEST_REDIS_CLUSTER="$(IFS=,; echo "${addrs[*]}")"
	export APIKEY_TEST_REDIS_CLUSTER_DIR="$dir"
	echo "Redis Cluster $(redis-server --version | awk '{print $3}') at $APIKEY_TEST_REDIS_CLUSTER"
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
