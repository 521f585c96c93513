#!/bin/bash
# Bring up a single-node Slurm 22.05 cluster (munged + slurmctld + slurmd, optional
# slurmdbd+MariaDB for sacct) with every config/state/log file under $SLURM_ROOT.
# Needs root. No systemd needed. Usage: SLURM_ROOT=<scratch dir> WITH_DBD=0 ./slurm_up.sh
set -euo pipefail
R=${SLURM_ROOT:-$(mktemp -d)}
WITH_DBD=${WITH_DBD:-0}
export SLURM_CONF=$R/etc/slurm.conf
HOST=$(hostname -s)
mkdir -p $R/etc $R/state/ctld $R/state/d $R/log $R/run $R/munge
chmod 711 $R/munge                 # munged: socket dir must be o+x, not group/other-writable

# 1. munge (own key + socket; no /etc/munge, /run/munge needed)
[ -f $R/munge/munge.key ] || mungekey -c -k $R/munge/munge.key
munged -F --key-file=$R/munge/munge.key --socket=$R/munge/munge.socket.2 \
  --log-file=$R/munge/munged.log --pid-file=$R/munge/munged.pid \
  --seed-file=$R/munge/munged.seed >$R/log/munged.fg 2>&1 &
echo $! >$R/run/munged.bgpid
for i in $(seq 50); do [ -S $R/munge/munge.socket.2 ] && break; sleep 0.1; done

# 2. slurm.conf (node line taken from slurmd -C; RealMemory rounded down a bit)
MEM=$(slurmd -C | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p'); MEM=$((MEM*98/100))
NODELINE=$(slurmd -C | head -1 | sed -E "s/RealMemory=[0-9]+/RealMemory=$MEM/")
if [ "$WITH_DBD" = 1 ]; then
ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
AccountingStoragePort=6819
AccountingStoragePass=$R/munge/munge.socket.2"
else
ACCT="AccountingStorageType=accounting_storage/none"
fi
cat >$SLURM_CONF <<CONF
ClusterName=ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$R/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$R/state/ctld
SlurmdSpoolDir=$R/state/d
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
EnforcePartLimits=ALL
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
JobAcctGatherType=jobacct_gather/linux
$ACCT
JobCompType=jobcomp/filetxt
JobCompLoc=$R/log/jobcomp.txt
MailProg=/bin/true
MinJobAge=300
KillWait=10
InactiveLimit=0
$NODELINE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

# 3. optional accounting: MariaDB (own datadir, TCP 127.0.0.1:13306) + slurmdbd
if [ "$WITH_DBD" = 1 ]; then
  M=$R/mysql; mkdir -p $M
  [ -d $M/data/mysql ] || mariadb-install-db --no-defaults --user=root --datadir=$M/data \
      --auth-root-authentication-method=socket >$M/install.log 2>&1
  mariadbd --no-defaults --user=root --datadir=$M/data --socket=$M/mysqld.sock --port=13306 \
    --bind-address=127.0.0.1 --skip-name-resolve --pid-file=$M/mysqld.pid \
    --log-error=$M/mysqld.err >$R/log/mariadbd.fg 2>&1 &
  echo $! >$R/run/mariadbd.bgpid
  for i in $(seq 100); do [ -S $M/mysqld.sock ] && break; sleep 0.1; done
  mariadb -S $M/mysqld.sock -u root -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  cat >$R/etc/slurmdbd.conf <<CONF
AuthType=auth/munge
AuthInfo=socket=$R/munge/munge.socket.2
DbdHost=$HOST
DbdPort=6819
SlurmUser=root
LogFile=$R/log/slurmdbd.log
PidFile=$R/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=13306
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
CONF
  chmod 600 $R/etc/slurmdbd.conf          # docs: readable by SlurmUser only
  slurmdbd -D >$R/log/slurmdbd.fg 2>&1 &    # finds slurmdbd.conf next to $SLURM_CONF
  echo $! >$R/run/slurmdbd.bgpid
  for i in $(seq 100); do grep -q 'slurmdbd version .* started' $R/log/slurmdbd.fg && break; sleep 0.1; done
fi

# 4. controller + node daemon, in the foreground (-D) so we own their PIDs
slurmctld -D -f $SLURM_CONF >$R/log/slurmctld.fg 2>&1 &
echo $! >$R/run/slurmctld.bgpid
slurmd -D -f $SLURM_CONF >$R/log/slurmd.fg 2>&1 &
echo $! >$R/run/slurmd.bgpid
for i in $(seq 150); do
  sinfo -h -o %T 2>/dev/null | grep -qx idle && { echo "slurm ready (SLURM_CONF=$SLURM_CONF)"; exit 0; }
  sleep 0.2
done
echo "slurm NOT ready" >&2; tail -n 20 $R/log/*.fg >&2; exit 1
