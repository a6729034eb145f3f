//! Claiming a run for this process (`ddsas search`, `ddsas train`): a
//! fresh claim, or a take-over from a dead `ddsas` of this host.

use super::device::device_name;
use super::process::{dead_search_owner, search_owner_id, Owner};
use crate::nas::parallel;
use crate::store::{Claim, Ranks, RunStatus, Store, StoreError};

/// The claim of a run this process runs itself on `device`: taken over by
/// another after two minutes without a heartbeat. Rank 0 of a data-parallel
/// run claims it after joining its group, so the claim carries the group's
/// world size and backend.
pub fn local_claim(device: tch::Device) -> Claim {
    Claim {
        owner: search_owner_id(),
        device: device_name(device),
        pid: i64::from(std::process::id()),
        stale_after_s: Some(120.0),
        ranks: Ranks {
            world_size: u32::try_from(parallel::world().size).unwrap_or(u32::MAX),
            backend: parallel::backend(),
        },
    }
}

/// Claims the run, or takes it over from a `ddsas search` of this host that
/// died without releasing it (a crash, `kill -9`): waiting two minutes for
/// its heartbeat to go stale would only hold the user up. This process runs
/// the run itself, so a claim it gets is confirmed at once as its next
/// attempt.
pub async fn claim_or_take_over(store: &Store, id: i64, claim: &Claim) -> Result<bool, StoreError> {
    let claimed = store.claim_run(id, claim).await?
        || take_over_dead_search(store, id, claim).await?
        || take_over_from_this_job(store, id, claim).await?;
    if !claimed {
        return Ok(false);
    }
    let attempt = store.run(id).await?.map_or(0, |row| row.attempts) + 1;
    store
        .confirm_claim(id, &claim.owner, claim.pid, attempt)
        .await
}

/// Takes the run over when it is held for the Slurm job this process runs
/// in (`slurm:<SLURM_JOB_ID>`): a training a sweep's pull worker handed to
/// this job, or one this job held for itself across its requeue.
async fn take_over_from_this_job(
    store: &Store,
    id: i64,
    claim: &Claim,
) -> Result<bool, StoreError> {
    let Some(job) = std::env::var("SLURM_JOB_ID").ok().filter(|j| !j.is_empty()) else {
        return Ok(false);
    };
    let held_for = Owner::SlurmJob { job }.to_string();
    let Some(row) = store.run(id).await? else {
        return Ok(false);
    };
    if row.status != RunStatus::Running || row.owner.as_deref() != Some(held_for.as_str()) {
        return Ok(false);
    }
    store
        .take_over_run(id, claim, row.owner.as_deref(), row.pid)
        .await
}

/// Takes the run over when a dead `ddsas search` of this host holds it.
async fn take_over_dead_search(store: &Store, id: i64, claim: &Claim) -> Result<bool, StoreError> {
    let Some(row) = store.run(id).await? else {
        return Ok(false);
    };
    if row.status != RunStatus::Running || !dead_search_owner(row.owner.as_deref()) {
        return Ok(false);
    }
    store
        .take_over_run(id, claim, row.owner.as_deref(), row.pid)
        .await
}
