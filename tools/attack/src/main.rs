//! `xenecho-attack`: the hostile and careless clients the appliance's e2e
//! checks run from dom0 on the emulated Xen host (never against anything
//! else: every target is an address on the test host's own bridge).
//!
//! ```text
//! xenecho-attack syn-flood   TARGET:PORT COUNT RATE
//! xenecho-attack silent      TARGET:PORT CONNECTIONS SECONDS [FROM]
//! xenecho-attack slow-body   TARGET:PORT CONNECTIONS SECONDS [FROM]
//! xenecho-attack zero-window TARGET:PORT CONNECTIONS SECONDS [FROM]
//! xenecho-attack hold        TARGET:PORT CONNECTIONS SECONDS [FROM]
//! ```
//! - `syn-flood`: COUNT SYNs at RATE a second from spoofed off-link
//!   addresses (198.18.0.0/15) that never finish their handshakes (raw
//!   socket: needs root);
//! - `silent`: connections that send nothing;
//! - `slow-body`: a POST announcing 1 MB, then one body byte every 2 s;
//! - `zero-window`: a 256 KiB POST with a tiny receive buffer, never read;
//! - `hold`: one keep-alive GET, its answer read, then idle (remove FROM from
//!   the interface meanwhile and the clients vanish from the network).
//!
//! The connection modes keep CONNECTIONS open for SECONDS, opening a new
//! one whenever the appliance ends one, bound to the source address FROM if
//! given, and print what the appliance did: how many connections it ended
//! and the longest any lasted. Every loop is bounded in count and time.
#![forbid(unsafe_code)]

mod clients;
mod flood;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

/// The most connections one run may hold.
const MAX_CONNECTIONS: usize = 4096;
/// The longest one run may last.
const MAX_SECONDS: u64 = 600;
/// The most SYNs one flood may send.
const MAX_SYNS: u64 = 1_000_000;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xenecho-attack: {message}");
            eprintln!("usage: xenecho-attack syn-flood TARGET:PORT COUNT RATE");
            eprintln!("       xenecho-attack silent|slow-body|zero-window|hold TARGET:PORT CONNECTIONS SECONDS [FROM]");
            ExitCode::from(2)
        }
    }
}

fn run(arguments: &[String]) -> Result<(), String> {
    let [mode, target, count, duration_or_rate, rest @ ..] = arguments else {
        return Err("too few arguments".into());
    };
    let target: SocketAddrV4 = target.parse().map_err(|_| format!("{target}: not ADDRESS:PORT"))?;
    let count: u64 = number(count)?;
    let last: u64 = number(duration_or_rate)?;
    if mode == "syn-flood" {
        return flood::syn_flood(target, count.min(MAX_SYNS), last.max(1)).map_err(|error| error.to_string());
    }
    let behaviour = match mode.as_str() {
        "silent" => clients::Behaviour::Silent,
        "slow-body" => clients::Behaviour::SlowBody,
        "zero-window" => clients::Behaviour::ZeroWindow,
        "hold" => clients::Behaviour::Hold,
        other => return Err(format!("unknown mode {other}")),
    };
    let from = match rest {
        [] => None,
        [from] => Some(from.parse::<Ipv4Addr>().map_err(|_| format!("{from}: not an IPv4 address"))?),
        _ => return Err("too many arguments".into()),
    };
    let plan = clients::Plan {
        target,
        from,
        connections: (count as usize).min(MAX_CONNECTIONS),
        duration: Duration::from_secs(last.min(MAX_SECONDS)),
        behaviour,
    };
    let report = clients::run(&plan);
    println!("{report}");
    Ok(())
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{text}: not a number"))
}
