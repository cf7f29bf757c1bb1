//! Ownership of shards by leases (`shared/SCALE-OUT.md` §4.3): which of
//! the processes sharing a schema advances which runs.
//!
//! A workflow ID's shard is a stable hash of it modulo the schema's shard
//! count (fixed at creation). Each process is a member (a `members` row
//! with a heartbeat) and owns some shards: a `shards` row names it as
//! owner, with an epoch (raised by every acquisition) and a lease end, all
//! by the database's clock. Once a second the lease task of each process,
//! on a session of its own:
//! 0. reads the schema's store format: once a process of a newer build
//!    raised it past this build's (its histories may now hold events this
//!    build cannot read), this process gives up every shard and its
//!    members row, and writes nothing more ([`StoreError::NewerFormat`]);
//! 1. ends the leases of members on this machine whose process has exited
//!    (a crash and restart need not wait for the lease; a member on
//!    another machine, or a paused process, is left to its lease);
//! 2. renews its members row and every lease it still holds, in one
//!    `UPDATE` each; a shard whose lease it no longer holds (ran out, taken
//!    over) is lost: the engine drops that shard's runs from memory;
//! 3. reads the live members (heartbeat within the lease) and computes the
//!    shards it should own: rendezvous hashing of (member, shard), so that
//!    members agree without talking and a member joining or leaving moves
//!    only its share;
//! 4. hands over the shards it holds and should not (they are lost here
//!    first, then released), and acquires those it should own whose lease
//!    ran out or was released; an acquired shard's wake-ups are read whole
//!    on the next scan ([`Ownership::take_fresh`]) and its inbox drained.
//!
//! Every write of an owner is fenced: the write transaction checks, with
//! the shard's row locked (`FOR KEY SHARE`), that this process owns the shard
//! under the epoch it believes it holds and that its lease has not run out
//! by the database's clock (`fenced` in [`super::schema`]). A process
//! paused past its lease and resumed therefore writes nothing: its writes
//! answer [`StoreError::ShardLost`], and its lease task finds the shards
//! lost at its next round. A takeover cannot commit between a fenced
//! check and its commit: an acquisition locks the row `FOR UPDATE`, which
//! conflicts with that lock; it skips (`SKIP LOCKED`) a row locked so and
//! tries again next round, so a process paused inside a transaction delays
//! the takeover of its shards until the server ends that transaction (the
//! writer's sessions have an `idle_in_transaction_session_timeout` of
//! about a lease), and never the renewal of anyone's leases: a renewal's
//! `UPDATE` does not conflict with `FOR KEY SHARE` (nor deadlocks with its
//! own writer), and the lease session has a `lock_timeout` of a quarter
//! lease.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::Client;

use super::inbox::Mailbox;
use super::{Target, db_err};
use crate::store::{StoreError, StoreEvent};

/// A process's lease on its shards, unless the builder sets another.
pub const DEFAULT_SHARD_LEASE: Duration = Duration::from_secs(5);
/// Shortest and longest lease the builder accepts.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(1);
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(60);
/// Members whose heartbeat is older than this many leases are removed.
const FORGET_AFTER_LEASES: u32 = 20;
/// The schema's store format (`meta`), read every round.
const FORMAT: &str = "SELECT value::bigint FROM meta WHERE key = 'format_version'";

/// The shards this process owns, as its lease task last saw them.
#[derive(Debug)]
pub(crate) struct Ownership {
    /// This process's member ID.
    pub(crate) me: uuid::Uuid,
    /// The schema's shard count.
    pub(crate) count: u32,
    /// By shard: the epoch it is owned under, 0 when not owned.
    epochs: Mutex<Vec<i64>>,
    /// Shards acquired whose wake-ups have not been read yet.
    fresh: Mutex<Vec<i32>>,
    /// Told when shards are acquired (the inbox task drains them).
    pub(crate) acquired: Notify,
    /// Where the engine hears of shards lost.
    events: mpsc::UnboundedSender<StoreEvent>,
    /// Forgets the requests taken from shards lost.
    mailbox: Arc<Mailbox>,
    /// The schema's store format once a newer build raised it past this
    /// build's (0 until then): this process then holds no shard and
    /// writes nothing.
    outdated: AtomicU32,
    /// Whether other live members share the schema (as the lease task
    /// last read them): only then are closes told ([`super::closes`]).
    others: AtomicBool,
}

impl Ownership {
    pub(crate) fn new(
        count: u32,
        events: mpsc::UnboundedSender<StoreEvent>,
        mailbox: Arc<Mailbox>,
    ) -> Self {
        Ownership {
            me: uuid::Uuid::new_v4(),
            count,
            epochs: Mutex::new(vec![0; count as usize]),
            fresh: Mutex::new(Vec::new()),
            acquired: Notify::new(),
            events,
            mailbox,
            others: AtomicBool::new(true),
            outdated: AtomicU32::new(0),
        }
    }

    /// The refusal of every write once a newer build raised the schema's
    /// store format past this build's.
    pub(crate) fn outdated(&self) -> Option<StoreError> {
        match self.outdated.load(Ordering::Acquire) {
            0 => None,
            found => Some(StoreError::NewerFormat {
                found,
                supported: crate::store::STORE_FORMAT_VERSION,
            }),
        }
    }

    /// Whether other processes shared the schema at the last lease round.
    pub(crate) fn others(&self) -> bool {
        self.others.load(Ordering::Relaxed)
    }

    /// A fenced write found `shard` owned by another process (or its lease
    /// run out) while this one held it under `epoch`: lost, unless it was
    /// acquired again since.
    pub(crate) fn refused(&self, shard: i32, epoch: i64) {
        let current = usize::try_from(shard)
            .ok()
            .and_then(|s| self.epochs_lock().get(s).copied());
        if current == Some(epoch) && epoch > 0 {
            self.tell_lost(vec![shard]);
        }
    }

    /// Forgets shards as lost and tells the engine, which drops their runs.
    fn tell_lost(&self, shards: Vec<i32>) {
        let lost = self.lose(shards);
        if !lost.is_empty() {
            self.mailbox.lost(&lost);
            tracing::info!(shards = ?lost, "shards lost: their runs leave memory here");
            let _ = self.events.send(StoreEvent::Lost(lost));
        }
    }

    fn epochs_lock(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        self.epochs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shard of a workflow ID (FNV-1a, stable across builds and
    /// platforms: it is stored).
    pub(crate) fn shard_of(&self, workflow_id: &str) -> i32 {
        shard_of(workflow_id, self.count)
    }

    /// Whether this process owns `shard` (as far as it knows: every write
    /// checks again).
    pub(crate) fn owns_shard(&self, shard: i32) -> bool {
        usize::try_from(shard)
            .ok()
            .and_then(|s| self.epochs_lock().get(s).copied())
            .is_some_and(|e| e > 0)
    }

    /// The epochs every fenced write of a batch checks.
    pub(crate) fn epochs(&self) -> Vec<i64> {
        self.epochs_lock().clone()
    }

    /// The shards owned now.
    pub(crate) fn owned(&self) -> Vec<i32> {
        self.epochs_lock()
            .iter()
            .enumerate()
            .filter(|(_, e)| **e > 0)
            .map(|(s, _)| s as i32)
            .collect()
    }

    /// Takes the shards acquired since the last call (their wake-ups are
    /// read whole once).
    pub(crate) fn take_fresh(&self) -> Vec<i32> {
        std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Gives shards back to [`take_fresh`](Self::take_fresh) (their read failed).
    pub(crate) fn give_back_fresh(&self, shards: Vec<i32>) {
        let mut fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        for shard in shards {
            if self.owns_shard(shard) && !fresh.contains(&shard) {
                fresh.push(shard);
            }
        }
    }

    /// Forgets shards as lost; answers those that were owned.
    fn lose(&self, shards: impl IntoIterator<Item = i32>) -> Vec<u32> {
        let mut epochs = self.epochs_lock();
        let mut lost = Vec::new();
        for shard in shards {
            if let Some(e) = epochs.get_mut(shard as usize)
                && *e > 0
            {
                *e = 0;
                lost.push(shard as u32);
            }
        }
        drop(epochs);
        let mut fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        fresh.retain(|s| !lost.contains(&(*s as u32)));
        lost
    }

    fn gain(&self, acquired: &[(i32, i64)]) {
        let mut epochs = self.epochs_lock();
        let mut fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        for &(shard, epoch) in acquired {
            if let Some(e) = epochs.get_mut(shard as usize) {
                *e = epoch.max(1);
                if !fresh.contains(&shard) {
                    fresh.push(shard);
                }
            }
        }
    }
}

/// The shard of a workflow ID among `count` (FNV-1a).
pub(crate) fn shard_of(workflow_id: &str, count: u32) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in workflow_id.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(count.max(1))) as i32
}

/// A member's score for a shard: the live member with the highest owns it.
fn score(member: uuid::Uuid, shard: i32) -> u64 {
    let mut x = (member.as_u128() as u64) ^ ((member.as_u128() >> 64) as u64);
    x ^= (shard as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The shards `me` should own among `live` members (`me` included).
pub(crate) fn desired(me: uuid::Uuid, live: &[uuid::Uuid], count: u32) -> HashSet<i32> {
    (0..count as i32)
        .filter(|&shard| {
            live.iter()
                .chain(std::iter::once(&me))
                .max_by_key(|m| (score(**m, shard), **m))
                == Some(&me)
        })
        .collect()
}

/// The lease task's settings and handles.
pub(crate) struct Leases {
    pub(crate) target: Target,
    pub(crate) ownership: Arc<Ownership>,
    pub(crate) lease: Duration,
}

impl Leases {
    /// How often leases are renewed: a fifth of the lease, at most a second.
    fn every(&self) -> Duration {
        (self.lease / 5).min(Duration::from_secs(1))
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Registers the member and takes its first shards (answered on
    /// `ready`), then renews and rebalances until `stop`, when it releases
    /// every shard and its member row.
    pub(crate) async fn run(
        self,
        ready: oneshot::Sender<Result<(), StoreError>>,
        mut stop: oneshot::Receiver<std::sync::mpsc::Sender<()>>,
    ) {
        let mut ready = Some(ready);
        let mut client: Option<Client> = None;
        let mut rounds: u32 = 0;
        let done = loop {
            let result = async {
                if client.as_ref().is_none_or(Client::is_closed) {
                    let c = self.target.connect().await?;
                    // No statement of the lease task waits long for a
                    // lock: the next round renews in time.
                    c.batch_execute(&format!(
                        "SET lock_timeout = {}",
                        (self.lease_ms() / 4).max(100)
                    ))
                    .await
                    .map_err(db_err)?;
                    client = Some(c);
                }
                let c = client.as_ref().ok_or(StoreError::Closed)?;
                self.round(c, rounds).await
            }
            .await;
            rounds = rounds.wrapping_add(1);
            if let Err(error) = &result {
                tracing::warn!(%error, "renewing the shard leases failed; retrying");
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(result);
            }
            tokio::select! {
                done = &mut stop => break done.ok(),
                _ = tokio::time::sleep(self.every()) => {}
            }
        };
        // Graceful: every shard goes back at once, for the others to take.
        if let Some(c) = client.as_ref().filter(|c| !c.is_closed()) {
            let released = c
                .execute(
                    "UPDATE shards SET owner = NULL, lease_until = NULL WHERE owner = $1",
                    &[&self.ownership.me],
                )
                .await;
            let _ = c
                .execute(
                    "DELETE FROM members WHERE member_id = $1",
                    &[&self.ownership.me],
                )
                .await;
            if let Err(error) = released {
                tracing::debug!(%error, "releasing the shards failed; their leases run out");
            }
        }
        self.ownership.lose(0..self.ownership.count as i32);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// One round: heartbeat, renew, rebalance; or, once a newer build
    /// raised the schema's store format, give everything up.
    async fn round(&self, c: &Client, rounds: u32) -> Result<(), StoreError> {
        let me = self.ownership.me;
        let lease = self.lease_ms();
        if self.newer_format(c).await? {
            return Ok(());
        }
        let beat = c
            .execute(
                "UPDATE members SET heartbeat_at = now() WHERE member_id = $1",
                &[&me],
            )
            .await
            .map_err(db_err)?;
        if beat == 0 {
            let host = host_identity();
            c.execute(
                "INSERT INTO members (member_id, host, pid) VALUES ($1, $2, $3) \
                 ON CONFLICT (member_id) DO UPDATE SET heartbeat_at = now()",
                &[&me, &host, &(std::process::id() as i32)],
            )
            .await
            .map_err(db_err)?;
        }
        if rounds % 60 == 59 {
            c.execute(
                "DELETE FROM members WHERE heartbeat_at < now() - $1::bigint * interval '1 millisecond'",
                &[&(lease.saturating_mul(i64::from(FORGET_AFTER_LEASES)))],
            )
            .await
            .map_err(db_err)?;
        }
        self.end_dead_neighbours(c).await?;
        let held: Vec<(i32, i64)> = c
            .query(
                "UPDATE shards SET lease_until = now() + $2::bigint * interval '1 millisecond' \
                 WHERE owner = $1 AND lease_until > now() RETURNING shard_id, epoch",
                &[&me, &lease],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        // Owned here but no longer held under the same epoch: lost.
        let epochs = self.ownership.epochs();
        let lost: Vec<i32> = epochs
            .iter()
            .enumerate()
            .filter(|(s, e)| **e > 0 && !held.contains(&(*s as i32, **e)))
            .map(|(s, _)| s as i32)
            .collect();
        // Not acquired again in this round: the engine drops what it held
        // of them first.
        let mut just_lost: HashSet<i32> = lost.iter().copied().collect();
        self.tell_lost(lost);
        let live: Vec<uuid::Uuid> = c
            .query(
                "SELECT member_id FROM members \
                 WHERE heartbeat_at > now() - $1::bigint * interval '1 millisecond'",
                &[&lease],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.ownership
            .others
            .store(live.iter().any(|m| *m != me), Ordering::Relaxed);
        let want = desired(me, &live, self.ownership.count);
        let owned = self.ownership.owned();
        // Handed over: lost here first, so that nothing more is written
        // for them, then released for their new owner.
        let handed: Vec<i32> = owned
            .iter()
            .copied()
            .filter(|s| !want.contains(s))
            .collect();
        if !handed.is_empty() {
            just_lost.extend(handed.iter().copied());
            self.tell_lost(handed.clone());
            c.execute(
                "UPDATE shards SET owner = NULL, lease_until = NULL \
                 WHERE owner = $1 AND shard_id = ANY($2)",
                &[&me, &handed],
            )
            .await
            .map_err(db_err)?;
        }
        let missing: Vec<i32> = want
            .into_iter()
            .filter(|s| !self.ownership.owns_shard(*s) && !just_lost.contains(s))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let acquired: Vec<(i32, i64)> = c
            .query(
                "UPDATE shards SET owner = $1, epoch = epoch + 1, \
                 lease_until = now() + $3::bigint * interval '1 millisecond' \
                 WHERE shard_id IN (SELECT shard_id FROM shards \
                     WHERE shard_id = ANY($2) AND (owner IS NULL OR lease_until < now()) \
                     ORDER BY shard_id FOR UPDATE SKIP LOCKED) \
                 AND (SELECT value::bigint FROM meta WHERE key = 'format_version') <= $4 \
                 RETURNING shard_id, epoch",
                &[
                    &me,
                    &missing,
                    &lease,
                    &i64::from(crate::store::STORE_FORMAT_VERSION),
                ],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if !acquired.is_empty() {
            tracing::debug!(shards = ?acquired, "acquired shards");
            self.ownership.gain(&acquired);
            self.ownership.acquired.notify_one();
            let _ = self.ownership.events.send(StoreEvent::Acquired);
        }
        Ok(())
    }

    fn tell_lost(&self, shards: Vec<i32>) {
        self.ownership.tell_lost(shards);
    }

    /// Whether a process of a newer build raised the schema's store format
    /// past this build's (the format is checked at open, and a newer
    /// process may open after this one). Then the histories of any shard
    /// may hold events this build cannot read: this process loses every
    /// shard it holds, releases them and leaves the members (so that the
    /// others, whose rendezvous no longer counts it, take its shards at
    /// once), and from then on answers every write with
    /// [`StoreError::NewerFormat`]. An acquisition checks the format in
    /// its own statement as well, so no shard is taken between this read
    /// and a newer process's open.
    async fn newer_format(&self, c: &Client) -> Result<bool, StoreError> {
        let found = c
            .query_opt(FORMAT, &[])
            .await
            .map_err(db_err)?
            .and_then(|r| u32::try_from(r.get::<_, i64>(0)).ok())
            .unwrap_or(0);
        let supported = crate::store::STORE_FORMAT_VERSION;
        if found <= supported {
            return Ok(false);
        }
        let first = self.ownership.outdated.swap(found, Ordering::AcqRel) == 0;
        if first {
            tracing::error!(
                found,
                supported,
                "a process of a newer steadfast raised the shared schema's store format: this \
                 process gives up its shards and writes nothing more; upgrade it"
            );
        }
        self.tell_lost((0..self.ownership.count as i32).collect());
        let me = self.ownership.me;
        c.execute(
            "UPDATE shards SET owner = NULL, lease_until = NULL WHERE owner = $1",
            &[&me],
        )
        .await
        .map_err(db_err)?;
        c.execute("DELETE FROM members WHERE member_id = $1", &[&me])
            .await
            .map_err(db_err)?;
        Ok(true)
    }

    /// Ends at once the leases of members on this machine (the same boot
    /// and process namespace) whose process is gone: a process restarted
    /// after a crash, or a neighbour killed, need not wait for the lease.
    /// A member whose process exists (running, or stopped: paused past its
    /// lease it loses its shards by the lease alone) is left to its lease;
    /// so is every member of another machine.
    async fn end_dead_neighbours(&self, c: &Client) -> Result<(), StoreError> {
        let Some(host) = local_identity() else {
            return Ok(());
        };
        let rows = c
            .query(
                "SELECT member_id, pid FROM members WHERE host = $1 AND member_id <> $2",
                &[&host, &self.ownership.me],
            )
            .await
            .map_err(db_err)?;
        let dead: Vec<uuid::Uuid> = rows
            .iter()
            .filter(|r| {
                let pid: i32 = r.get(1);
                pid > 0 && gone(pid)
            })
            .map(|r| r.get(0))
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        tracing::info!(members = ?dead, "members on this machine whose process is gone: their leases end now");
        c.execute(
            "UPDATE shards SET lease_until = now() - interval '1 millisecond' \
             WHERE owner = ANY($1)",
            &[&dead],
        )
        .await
        .map_err(db_err)?;
        c.execute("DELETE FROM members WHERE member_id = ANY($1)", &[&dead])
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// Whether process `pid` of this machine has exited (no longer listed, or
/// exited and not reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// What names this process's machine in its members row: the host name,
/// with the boot and the process namespace where the machine tells them
/// (two members with the same identity see each other's processes).
fn host_identity() -> String {
    let name = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    match local_identity() {
        Some(local) => local,
        None => name,
    }
}

/// The host name, boot ID and process namespace, on Linux; `None` where
/// they cannot be read (then no member is ever taken for dead early).
fn local_identity() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!(
        "{name}/{}/{}",
        boot.trim(),
        namespace.to_string_lossy()
    ))
}

#[cfg(test)]
mod tests {
    use super::desired;

    /// Live members split the shards without talking: every shard has
    /// exactly one desired owner, each member a fair share, and a member
    /// leaving moves only its own shards.
    #[test]
    fn rendezvous_splits_every_shard_once_and_a_leaver_moves_only_its_own() {
        // Fixed IDs: the split is a pure function of them.
        let members: Vec<uuid::Uuid> = [
            0x6f1e_0c2a_9b4d_4e21_8a3f_5c7d_1e2b_3a4cu128,
            0x0d9c_8b7a_6f5e_4d3c_9b2a_1f0e_d9c8_b7a6,
            0xa1b2_c3d4_e5f6_4a7b_8c9d_0e1f_2a3b_4c5d,
        ]
        .into_iter()
        .map(uuid::Uuid::from_u128)
        .collect();
        let shares: Vec<_> = members.iter().map(|m| desired(*m, &members, 64)).collect();
        for shard in 0..64 {
            let owners = shares.iter().filter(|s| s.contains(&shard)).count();
            assert_eq!(owners, 1, "shard {shard} has one desired owner");
        }
        for share in &shares {
            assert!(
                (8..=40).contains(&share.len()),
                "a share of {} of 64 shards among 3 members",
                share.len()
            );
        }
        let two = &members[..2];
        for (i, member) in two.iter().enumerate() {
            let after = desired(*member, two, 64);
            assert!(
                shares[i].is_subset(&after),
                "a member keeps its shards when another leaves"
            );
        }
    }
}
