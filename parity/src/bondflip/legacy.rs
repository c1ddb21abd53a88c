//! The legacy request key `bond-flip.<node>` (`action=mode|active;value=…;state=requested;id=…`)
//! in operator mode: translated into an operator-owned `BondFlip` (as the upgrade translates
//! `desired-storage-version`), and answered (`state=applied|failed;done=…;msg=…`) once that flip
//! is over, so that whoever wrote the request reads the outcome where they asked, and the key
//! no longer shows a flip in flight.

use nodewright_api::WorkflowOwner;
use nodewright_api::bondflip::{
    BondFlipPhase as Phase, BondFlipSpec, BondFlipStatus, BondState, BondTarget, mode_named,
};
use nodewright_parsers::{BondFlip as Request, BondFlipAction, BondFlipState};

use super::Host;

/// The annotation on a translated `BondFlip` naming the request it answers: `<node>/<id>`.
pub const REQUEST_ANNOTATION: &str = "nodewright.io/legacy-bond-flip";

/// What to do with a requested `bond-flip.<node>` key.
#[derive(Clone, Debug, PartialEq)]
pub enum Translation {
    /// Create this operator-owned flip, named `name`.
    Create {
        /// Its name.
        name: String,
        /// Its spec.
        spec: Box<BondFlipSpec>,
    },
    /// Answer the request at once, as the script would have: `applied` (nothing to change) or
    /// `failed` (it cannot be represented), with why.
    Answer {
        /// `true` for `applied`.
        applied: bool,
        /// The key's `msg`.
        msg: String,
    },
}

/// The request's id: its `id`, else its request time.
fn id(request: &Request) -> String {
    request
        .id
        .clone()
        .or_else(|| request.requested.map(|r| r.to_string()))
        .unwrap_or_else(|| "0".to_owned())
}

/// The request's reference in [`REQUEST_ANNOTATION`].
pub fn reference(node: &str, request: &Request) -> String {
    format!("{node}/{}", id(request))
}

/// The name of the flip translated from `node`'s request (`bondflip-<node>-<id>`; the bridge's
/// observed legacy flips are `legacy-bondflip-…`).
pub fn request_name(node: &str, request: &Request) -> String {
    crate::keys::idempotency_key("bondflip-", &format!("{node}-{}", id(request)))
}

/// The translation of `node`'s request when it is `requested` and no flip named for it exists
/// (`exists`); `None` while the node's bond is not known from fresh facts (the flip's `from` is
/// the bond as it is when the request is taken), or when there is nothing to do.
pub fn translate(
    node: &str,
    request: &Request,
    bond: &str,
    host: Option<&Host>,
    exists: &dyn Fn(&str) -> bool,
) -> Option<Translation> {
    if request.state != BondFlipState::Requested {
        return None;
    }
    let name = request_name(node, request);
    if exists(&name) {
        return None;
    }
    let to = match &request.action {
        BondFlipAction::Mode => match mode_named(&request.value) {
            Some(m) => BondTarget {
                mode: Some(m),
                active_slave: None,
            },
            None => {
                return Some(Translation::Answer {
                    applied: false,
                    msg: "unknown bond mode".to_owned(),
                });
            }
        },
        BondFlipAction::Active => BondTarget {
            mode: None,
            active_slave: Some(request.value.clone()),
        },
        BondFlipAction::Unknown(_) => {
            return Some(Translation::Answer {
                applied: false,
                msg: "unknown action".to_owned(),
            });
        }
    };
    let current = host?.bond.as_ref()?;
    let from = BondState {
        mode: current.mode,
        active_slave: current.active_slave.clone(),
    };
    let spec = BondFlipSpec {
        owner: WorkflowOwner::Operator,
        node_name: node.to_owned(),
        bond: bond.to_owned(),
        from,
        to,
    };
    let target = spec.target_state();
    if target.matches(current.mode, current.active_slave.as_deref()) {
        // As the script answers a mode it is already in.
        return Some(Translation::Answer {
            applied: true,
            msg: format!("already in {}", target.to_arg()),
        });
    }
    Some(Translation::Create {
        name,
        spec: Box::new(spec),
    })
}

/// The answer once the flip `status` is over: applied (Completed) or not (RolledBack, Failed),
/// when it finished and why; `None` while it runs.
pub fn answer_of(status: &BondFlipStatus) -> Option<(bool, i64, String)> {
    let phase = status.phase?;
    let applied = match phase {
        Phase::Completed => true,
        Phase::RolledBack | Phase::Failed => false,
        _ => return None,
    };
    let done = status.finished_at.as_ref().map_or(0, |t| t.0.as_second());
    let msg = status
        .history
        .last()
        .and_then(|t| t.message.clone())
        .unwrap_or_default();
    Some((applied, done, msg))
}

/// The request's blob with `state`, `done` and `msg` set, in the script's spelling (`;` and `=`
/// cannot appear in a value: `msg` has them replaced, as the script's `blob_clean` does).
pub fn answered(request: &Request, applied: bool, done: i64, msg: &str) -> String {
    let action = match &request.action {
        BondFlipAction::Mode => "mode".to_owned(),
        BondFlipAction::Active => "active".to_owned(),
        BondFlipAction::Unknown(a) => a.clone(),
    };
    let mut parts = vec![
        format!("action={action}"),
        format!("value={}", request.value),
        format!("state={}", if applied { "applied" } else { "failed" }),
    ];
    if let Some(id) = &request.id {
        parts.push(format!("id={id}"));
    }
    if let Some(r) = request.requested {
        parts.push(format!("requested={r}"));
    }
    parts.push(format!("done={done}"));
    let msg: String = msg
        .chars()
        .map(|c| if matches!(c, ';' | '=' | '\n') { ',' } else { c })
        .collect();
    if !msg.is_empty() {
        parts.push(format!("msg={msg}"));
    }
    for (k, v) in &request.unknown {
        if !matches!(k.as_str(), "owner") {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.push("owner=operator".to_owned());
    parts.join(";")
}
