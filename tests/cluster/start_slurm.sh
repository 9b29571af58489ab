#!/usr/bin/env bash
# A throw-away single-node SLURM cluster for tests: MariaDB + munged + slurmdbd +
# slurmctld + slurmd on localhost, with job accounting (sacct) and one declared
# (fake) GPU so that --gpus=1 / --gres=gpu:1 jobs are accepted on a CPU-only machine.
#
# Usage:  tests/cluster/start_slurm.sh [start|stop|restart|status|env|purge]
#   start   (default) install missing packages, write configs, start what is not
#           running, register cluster/account/user, wait for the node to be idle.
#           Idempotent: a second start while the cluster is up only re-checks it.
#           Progress goes to stderr; stdout gets the shell exports, so
#           eval "$(tests/cluster/start_slurm.sh)" sets up the current shell.
#   stop    stop every daemon this script started (slurmd, slurmctld, slurmdbd,
#           MariaDB, munged); state is kept, so a later start resumes it.
#   restart stop then start.
#   status  exit 0 when the node answers in sinfo, else 1.
#   env     print the exports only.
#   purge   stop, then delete the state directory.
#
# Must run as root (slurmd launches jobs, SlurmUser=root). Exit status 77 means
# "cannot run here" (not root, or packages missing and apt-get unavailable).
#
# Environment (all optional):
#   STENTRANS_SLURM_DIR        state directory               [/tmp/stentrans-slurm]
#   STENTRANS_SLURM_CLUSTER    ClusterName                   [stentrans]
#   STENTRANS_SLURM_PARTITION  partition name                [debug]
#   STENTRANS_SLURM_ACCOUNT    account registered for user   [stentrans]
#   STENTRANS_SLURM_USER       user added to the account     [$(id -un)]
#   STENTRANS_SLURM_NODENAME   NodeName                      [$(hostname -s)]
#   STENTRANS_SLURM_GPUS       fake GPUs declared on node    [1]
#   STENTRANS_SLURM_MEM_MB     RealMemory (MB)               [slurmd -C value]
#   STENTRANS_SLURM_CTLD_PORT / _SLURMD_PORT / _DBD_PORT     [6817/6818/6819]
#   STENTRANS_SLURM_DB_PORT    private MariaDB TCP port      [3307]
#   STENTRANS_SLURM_DB_PASS    password of the slurm DB user [stentrans]
#   STENTRANS_SLURM_WAIT       seconds to wait per daemon    [90]
#   STENTRANS_SLURM_INSTALL    1: apt-get install missing packages, 0: never [1]
#   STENTRANS_SLURM_LINK_CONF  symlink made to our slurm.conf; empty: none
#                              [/etc/slurm/slurm.conf]. Needed because
#                              snakemake-executor-plugin-slurm-jobstep strips
#                              every SLURM_* variable (SLURM_CONF too) before its
#                              inner `srun`, which then only finds the compiled-in
#                              default path. An existing regular file there is
#                              never replaced (start fails instead).
set -euo pipefail

ACTION=${1:-start}

DIR=${STENTRANS_SLURM_DIR:-/tmp/stentrans-slurm}
CLUSTER=${STENTRANS_SLURM_CLUSTER:-stentrans}
PARTITION=${STENTRANS_SLURM_PARTITION:-debug}
ACCOUNT=${STENTRANS_SLURM_ACCOUNT:-stentrans}
SUSER=${STENTRANS_SLURM_USER:-$(id -un)}
NODENAME=${STENTRANS_SLURM_NODENAME:-$(hostname -s 2>/dev/null || hostname)}
NGPUS=${STENTRANS_SLURM_GPUS:-1}
CTLD_PORT=${STENTRANS_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${STENTRANS_SLURM_SLURMD_PORT:-6818}
DBD_PORT=${STENTRANS_SLURM_DBD_PORT:-6819}
DB_PORT=${STENTRANS_SLURM_DB_PORT:-3307}
DB_PASS=${STENTRANS_SLURM_DB_PASS:-stentrans}
WAIT=${STENTRANS_SLURM_WAIT:-90}
INSTALL=${STENTRANS_SLURM_INSTALL:-1}
LINK_CONF=${STENTRANS_SLURM_LINK_CONF-/etc/slurm/slurm.conf}

ETC=$DIR/etc
RUN=$DIR/run
LOG=$DIR/log
CONF=$ETC/slurm.conf
MUNGE_SOCK=$RUN/munge.socket
DB_SOCK=$RUN/mysqld.sock
DB_NAME=slurm_acct_db

export SLURM_CONF=$CONF

say() { echo "[slurm] $*" >&2; }
die() {
    echo "[slurm] ERROR: $*" >&2
    exit 1
}

print_exports() {
    echo "export SLURM_CONF=$CONF"
    echo "export STENTRANS_SLURM_PARTITION=$PARTITION"
    echo "export STENTRANS_SLURM_ACCOUNT=$ACCOUNT"
}

# --- process helpers ---------------------------------------------------------

# pid from a pid file if that process is alive, else nothing (and status 1)
live_pid() {
    local f=$1 pid
    [[ -s $f ]] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# wait_for SECONDS DESCRIPTION COMMAND... : poll COMMAND once a second
wait_for() {
    local deadline=$((SECONDS + $1))
    shift 2
    while ((SECONDS < deadline)); do
        if [[ $(type -t "$1") == function ]]; then
            "$@" >/dev/null 2>&1 && return 0
        elif timeout 20 "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    return 1
}

stop_pidfile() {
    local name=$1 f=$2 pid i
    if pid=$(live_pid "$f"); then
        say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name did not stop in 30 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$f"
}

tail_log() {
    local f=$1
    if [[ -s $f ]]; then
        echo "----- last lines of $f -----" >&2
        tail -n 25 "$f" >&2
        echo "-----" >&2
    fi
}

# --- install -----------------------------------------------------------------

need_install() {
    local b
    for b in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged munge mariadbd mariadb mariadb-install-db; do
        command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$b" >/dev/null 2>&1 || return 0
    done
    return 1
}

install_packages() {
    export PATH=$PATH:/usr/sbin:/sbin
    need_install || return 0
    if [[ $INSTALL == 0 ]]; then
        echo "[slurm] SLURM/munge/MariaDB binaries missing and STENTRANS_SLURM_INSTALL=0" >&2
        exit 77
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "[slurm] SLURM/munge/MariaDB binaries missing and apt-get is not available" >&2
        exit 77
    fi
    say "installing slurm-wlm slurmdbd munge mariadb-server (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends \
        slurm-wlm slurmdbd slurm-client munge mariadb-server mariadb-client >&2 ||
        die "apt-get install failed"
    need_install && die "packages installed but some binaries are still missing"
    return 0
}

# --- configuration -----------------------------------------------------------

node_hw() {
    # "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    local line key val out=""
    line=$(slurmd -C 2>/dev/null | head -n 1) || true
    [[ -n $line ]] || die "slurmd -C printed nothing"
    for kv in $line; do
        key=${kv%%=*}
        val=${kv#*=}
        case $key in
        CPUs | Boards | SocketsPerBoard | CoresPerSocket | ThreadsPerCore) out+=" $key=$val" ;;
        RealMemory) out+=" RealMemory=${STENTRANS_SLURM_MEM_MB:-$val}" ;;
        esac
    done
    echo "$out"
}

write_if_changed() {
    # write_if_changed FILE MODE ; content on stdin. Sets CONFIG_CHANGED=1 if the
    # file had to be (re)written.
    local f=$1 mode=$2 tmp
    tmp=$(mktemp "$f.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f $f ]] && cmp -s "$tmp" "$f"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$f"
        CONFIG_CHANGED=1
    fi
}

write_configs() {
    # sets CONFIG_CHANGED=1 when any config file was (re)written
    CONFIG_CHANGED=0
    mkdir -p "$ETC" "$RUN" "$LOG" "$DIR/state/slurmctld" "$DIR/state/slurmd" "$DIR/dev" "$DIR/munge"
    chmod 755 "$DIR" "$ETC"
    chmod 711 "$RUN"
    local hw cpus i files=""
    hw=$(node_hw)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    local mem
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    # jobs that ask for no memory get an even share of the node, not all of it
    local defmem=$((mem / (cpus > 0 ? cpus : 1)))

    # fake GPU device files: slurmd wants a character device whose name ends in
    # the GPU index (it sets CUDA_VISIBLE_DEVICES from it); a symlink to
    # /dev/null passes its stat() check and needs no mknod
    for ((i = 0; i < NGPUS; i++)); do
        if [[ ! -c $DIR/dev/nvidia$i ]]; then
            rm -f "$DIR/dev/nvidia$i"
            ln -s /dev/null "$DIR/dev/nvidia$i"
        fi
        files+="$DIR/dev/nvidia$i,"
    done
    files=${files%,}

    local gres_node="" gres_types=""
    if ((NGPUS > 0)); then
        gres_node=" Gres=gpu:$NGPUS"
        gres_types="GresTypes=gpu"
    fi

    write_if_changed "$CONF" 644 <<EOF
# generated by tests/cluster/start_slurm.sh -- single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
StateSaveLocation=$DIR/state/slurmctld
SlurmdSpoolDir=$DIR/state/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: plain /proc process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# reject (instead of leaving pending forever) jobs that ask for more than the node has
EnforcePartLimits=ALL
DefMemPerCPU=$defmem
$gres_types
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# for accounting_storage/slurmdbd this is the munge socket to authenticate with
AccountingStoragePass=$MUNGE_SOCK
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
# keep --comment (snakemake's plugin puts the rule name there) for sacct
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
NodeName=$NODENAME NodeAddr=127.0.0.1 NodeHostname=$NODENAME$hw$gres_node State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODENAME Default=YES MaxTime=INFINITE State=UP
EOF

    if ((NGPUS > 0)); then
        write_if_changed "$ETC/gres.conf" 644 <<EOF
# fake GPU(s): a declared device file, no NVML autodetection
AutoDetect=off
NodeName=$NODENAME Name=gpu File=$files
EOF
    else
        rm -f "$ETC/gres.conf"
    fi

    # slurmdbd refuses a slurmdbd.conf readable by others
    write_if_changed "$ETC/slurmdbd.conf" 600 <<EOF
# generated by tests/cluster/start_slurm.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    # the daemons look for plugstack.conf beside slurm.conf: no SPANK plugins
    [[ -f $ETC/plugstack.conf ]] || : >"$ETC/plugstack.conf"
    return 0
}

link_default_conf() {
    [[ -n $LINK_CONF ]] || return 0
    if [[ -L $LINK_CONF ]]; then
        [[ $(readlink "$LINK_CONF") == "$CONF" ]] && return 0
        if [[ -e $LINK_CONF ]] && [[ $(readlink "$LINK_CONF") != "$DIR"/* ]]; then
            die "$LINK_CONF is a symlink to $(readlink "$LINK_CONF"), not this cluster's config; set STENTRANS_SLURM_LINK_CONF= to skip it"
        fi
        rm -f "$LINK_CONF"
    elif [[ -e $LINK_CONF ]]; then
        die "$LINK_CONF exists (another SLURM installation?); not replacing it. Set STENTRANS_SLURM_LINK_CONF= (empty) to skip the link (jobs run through snakemake-executor-plugin-slurm-jobstep then fail: it drops SLURM_CONF before srun)"
    fi
    mkdir -p "$(dirname "$LINK_CONF")"
    ln -s "$CONF" "$LINK_CONF"
    say "linked $LINK_CONF -> $CONF"
}

unlink_default_conf() {
    if [[ -n $LINK_CONF && -L $LINK_CONF && $(readlink "$LINK_CONF") == "$CONF" ]]; then
        rm -f "$LINK_CONF"
        say "removed link $LINK_CONF"
    fi
}

# --- daemons -----------------------------------------------------------------

db() { mariadb --no-defaults -S "$DB_SOCK" -u root; }

start_mariadb() {
    if live_pid "$RUN/mysqld.pid" >/dev/null; then
        say "MariaDB already running"
    else
        if [[ ! -d $DIR/mysql/mysql ]]; then
            say "initialising MariaDB data directory $DIR/mysql"
            rm -rf "$DIR/mysql"
            mariadb-install-db --no-defaults --user=root --datadir="$DIR/mysql" \
                --auth-root-authentication-method=socket --skip-test-db \
                >"$LOG/mariadb-install.log" 2>&1 ||
                {
                    tail_log "$LOG/mariadb-install.log"
                    die "mariadb-install-db failed"
                }
        fi
        say "starting MariaDB on 127.0.0.1:$DB_PORT"
        setsid mariadbd --no-defaults --user=root --datadir="$DIR/mysql" \
            --socket="$DB_SOCK" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --pid-file="$RUN/mysqld.pid" --log-error="$LOG/mariadb.log" \
            --skip-name-resolve --innodb-buffer-pool-size=128M \
            --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 \
            --max-allowed-packet=64M \
            </dev/null >>"$LOG/mariadb.out" 2>&1 &
        wait_for "$WAIT" MariaDB mariadb-admin --no-defaults -S "$DB_SOCK" -u root ping ||
            {
                tail_log "$LOG/mariadb.log"
                die "MariaDB did not answer within ${WAIT}s"
            }
    fi
    db <<EOF || die "could not create the slurm database user"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO 'slurm'@'localhost';
GRANT ALL ON $DB_NAME.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
}

munge_ok() { timeout 10 munge -S "$MUNGE_SOCK" -n </dev/null | timeout 10 unmunge -S "$MUNGE_SOCK" >/dev/null; }

start_munge() {
    if live_pid "$RUN/munged.pid" >/dev/null && munge_ok 2>/dev/null; then
        say "munged already running"
        return 0
    fi
    stop_pidfile munged "$RUN/munged.pid" # alive but not answering
    if [[ ! -s $DIR/munge/munge.key ]]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 700 "$DIR/munge"
    chmod 600 "$DIR/munge/munge.key"
    rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
    say "starting munged (socket $MUNGE_SOCK)"
    setsid munged --socket="$MUNGE_SOCK" --key-file="$DIR/munge/munge.key" \
        --log-file="$LOG/munged.log" --pid-file="$RUN/munged.pid" \
        --seed-file="$DIR/munge/munged.seed" \
        </dev/null >>"$LOG/munged.out" 2>&1 ||
        {
            tail_log "$LOG/munged.log"
            tail_log "$LOG/munged.out"
            die "munged failed to start"
        }
    wait_for "$WAIT" munged munge_ok || {
        tail_log "$LOG/munged.log"
        die "munged did not answer within ${WAIT}s"
    }
}

start_slurmdbd() {
    if live_pid "$RUN/slurmdbd.pid" >/dev/null; then
        say "slurmdbd already running"
    else
        say "starting slurmdbd on port $DBD_PORT"
        setsid slurmdbd </dev/null >>"$LOG/slurmdbd.out" 2>&1 ||
            {
                tail_log "$LOG/slurmdbd.out"
                tail_log "$LOG/slurmdbd.log"
                die "slurmdbd failed to start"
            }
    fi
    wait_for "$WAIT" slurmdbd sacctmgr -n list cluster ||
        {
            tail_log "$LOG/slurmdbd.log"
            die "slurmdbd did not answer sacctmgr within ${WAIT}s"
        }
}

register_accounts() {
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        say "registering cluster $CLUSTER"
        sacctmgr -i add cluster "$CLUSTER" >&2 || die "sacctmgr add cluster failed"
    fi
    if ! sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT"; then
        say "registering account $ACCOUNT"
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
            description="stentrans tests" organization=stentrans >&2 ||
            die "sacctmgr add account failed"
    fi
    if ! sacctmgr -n -P list association where cluster="$CLUSTER" account="$ACCOUNT" \
        user="$SUSER" format=user | grep -qx "$SUSER"; then
        say "adding user $SUSER to account $ACCOUNT"
        sacctmgr -i add user "$SUSER" account="$ACCOUNT" cluster="$CLUSTER" \
            defaultaccount="$ACCOUNT" >&2 || die "sacctmgr add user failed"
    fi
}

start_slurmctld() {
    if live_pid "$RUN/slurmctld.pid" >/dev/null; then
        say "slurmctld already running"
    else
        say "starting slurmctld on port $CTLD_PORT"
        setsid slurmctld -f "$CONF" </dev/null >>"$LOG/slurmctld.out" 2>&1 ||
            {
                tail_log "$LOG/slurmctld.out"
                tail_log "$LOG/slurmctld.log"
                die "slurmctld failed to start"
            }
    fi
    wait_for "$WAIT" slurmctld scontrol ping ||
        {
            tail_log "$LOG/slurmctld.log"
            die "slurmctld did not answer 'scontrol ping' within ${WAIT}s"
        }
}

start_slurmd() {
    if live_pid "$RUN/slurmd.pid" >/dev/null; then
        say "slurmd already running"
    else
        say "starting slurmd as node $NODENAME"
        setsid slurmd -f "$CONF" -N "$NODENAME" </dev/null >>"$LOG/slurmd.out" 2>&1 ||
            {
                tail_log "$LOG/slurmd.out"
                tail_log "$LOG/slurmd.log"
                die "slurmd failed to start"
            }
    fi
}

node_state() { sinfo -h -n "$NODENAME" -o '%T' 2>/dev/null | head -n 1; }

wait_idle() {
    local i=0 state="" deadline=$((SECONDS + WAIT))
    while ((SECONDS < deadline)); do
        state=$(node_state) || true
        case $state in
        idle | mixed | allocated | completing)
            say "node $NODENAME is $state"
            return 0
            ;;
        *drain*)
            # left drained by an earlier run (e.g. a killed slurmd): resume once
            if ((i == 0)); then
                say "node $NODENAME is $state, resuming it"
                scontrol update nodename="$NODENAME" state=resume >&2 || true
                i=1
            fi
            ;;
        esac
        sleep 1
    done
    echo "[slurm] ERROR: node $NODENAME not idle after ${WAIT}s (state: '${state:-unknown}')" >&2
    sinfo -R >&2 || true
    scontrol show node "$NODENAME" >&2 || true
    tail_log "$LOG/slurmd.log"
    tail_log "$LOG/slurmctld.log"
    exit 1
}

stop_all() {
    stop_pidfile slurmd "$RUN/slurmd.pid"
    stop_pidfile slurmctld "$RUN/slurmctld.pid"
    stop_pidfile slurmdbd "$RUN/slurmdbd.pid"
    if live_pid "$RUN/mysqld.pid" >/dev/null; then
        say "stopping MariaDB"
        mariadb-admin --no-defaults -S "$DB_SOCK" -u root shutdown >/dev/null 2>&1 || true
    fi
    stop_pidfile MariaDB "$RUN/mysqld.pid"
    stop_pidfile munged "$RUN/munged.pid"
    unlink_default_conf
    say "stopped"
}

start_all() {
    if [[ $(id -u) != 0 ]]; then
        echo "[slurm] must run as root (slurmd launches jobs; SlurmUser=root)" >&2
        exit 77
    fi
    install_packages
    export PATH=$PATH:/usr/sbin:/sbin
    write_configs
    link_default_conf
    if [[ $CONFIG_CHANGED == 1 ]] && { live_pid "$RUN/slurmctld.pid" || live_pid "$RUN/slurmd.pid" || live_pid "$RUN/slurmdbd.pid"; } >/dev/null; then
        say "configuration changed: restarting the SLURM daemons"
        stop_pidfile slurmd "$RUN/slurmd.pid"
        stop_pidfile slurmctld "$RUN/slurmctld.pid"
        stop_pidfile slurmdbd "$RUN/slurmdbd.pid"
    fi
    start_munge
    start_mariadb
    start_slurmdbd
    register_accounts
    start_slurmctld
    start_slurmd
    wait_idle
    say "cluster '$CLUSTER' up: partition '$PARTITION', account '$ACCOUNT', state in $DIR"
    say "stop it with: $(dirname "$0")/stop_slurm.sh"
    print_exports
}

case $ACTION in
start) start_all ;;
stop) stop_all ;;
restart)
    stop_all
    start_all
    ;;
status)
    state=$(node_state) || true
    if [[ -n $state ]] && live_pid "$RUN/slurmctld.pid" >/dev/null; then
        echo "node $NODENAME: $state"
    else
        echo "not running"
        exit 1
    fi
    ;;
env) print_exports ;;
purge)
    stop_all
    case $DIR in
    "" | / | /tmp | /var | /var/lib) die "refusing to delete '$DIR'" ;;
    esac
    rm -rf "$DIR"
    say "deleted $DIR"
    ;;
*)
    echo "usage: $0 [start|stop|restart|status|env|purge]" >&2
    exit 2
    ;;
esac
