//! Many TCP clients that misbehave in one way, kept open for a while, with
//! a report of what the appliance did to them.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// How each connection misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing.
    Silent,
    /// Announces a 1 MB body and sends a byte of it every 2 s.
    SlowBody,
    /// Sends a 256 KiB POST through a tiny receive buffer it never reads.
    ZeroWindow,
    /// One keep-alive GET, its answer read, then idle.
    Hold,
}

/// What to run.
pub struct Plan {
    /// The appliance's address and port.
    pub target: SocketAddrV4,
    /// The source address to bind, if any.
    pub from: Option<Ipv4Addr>,
    /// Connections to keep open.
    pub connections: usize,
    /// How long.
    pub duration: Duration,
    /// How they misbehave.
    pub behaviour: Behaviour,
}

/// What the appliance did.
#[derive(Debug, Default)]
pub struct Report {
    behaviour: Option<Behaviour>,
    opened: u64,
    connect_failures: u64,
    ended: u64,
    longest_ended: Duration,
    still_open: u64,
    oldest_open: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:?}: {} connections opened ({} connects failed); the appliance ended {} (the longest had lasted {:.1} s); {} still open at the end (the oldest {:.1} s)",
            self.behaviour.unwrap_or(Behaviour::Silent),
            self.opened,
            self.connect_failures,
            self.ended,
            self.longest_ended.as_secs_f64(),
            self.still_open,
            self.oldest_open.as_secs_f64()
        )
    }
}

struct Client {
    stream: TcpStream,
    opened: Instant,
    to_send: Vec<u8>,
    trickled: u64,
}

/// The most connects tried in one round, so a refusing appliance does not
/// make the tool spin.
const CONNECTS_PER_ROUND: usize = 16;
const ROUND: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `plan`; returns what the appliance did.
pub fn run(plan: &Plan) -> Report {
    let started = Instant::now();
    let mut report = Report { behaviour: Some(plan.behaviour), ..Report::default() };
    let mut clients: Vec<Option<Client>> = (0..plan.connections).map(|_| None).collect();
    while started.elapsed() < plan.duration {
        for slot in clients.iter_mut().filter(|slot| slot.is_none()).take(CONNECTS_PER_ROUND) {
            if started.elapsed() >= plan.duration {
                break;
            }
            match open(plan) {
                Ok(client) => {
                    report.opened += 1;
                    *slot = Some(client);
                }
                Err(_) => report.connect_failures += 1,
            }
        }
        for slot in &mut clients {
            let Some(client) = slot else { continue };
            if !drive(client, plan.behaviour) {
                report.ended += 1;
                report.longest_ended = report.longest_ended.max(client.opened.elapsed());
                *slot = None;
            }
        }
        std::thread::sleep(ROUND);
    }
    for client in clients.iter().flatten() {
        report.still_open += 1;
        report.oldest_open = report.oldest_open.max(client.opened.elapsed());
    }
    report
}

fn open(plan: &Plan) -> std::io::Result<Client> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if plan.behaviour == Behaviour::ZeroWindow {
        socket.set_recv_buffer_size(2048)?;
    }
    if let Some(from) = plan.from {
        socket.bind(&SockAddr::from(SocketAddrV4::new(from, 0)))?;
    }
    socket.connect_timeout(&SockAddr::from(plan.target), CONNECT_TIMEOUT)?;
    socket.set_nonblocking(true)?;
    let stream: TcpStream = socket.into();
    Ok(Client { stream, opened: Instant::now(), to_send: first_bytes(plan.behaviour), trickled: 0 })
}

fn first_bytes(behaviour: Behaviour) -> Vec<u8> {
    match behaviour {
        Behaviour::Silent => Vec::new(),
        Behaviour::SlowBody => b"POST /slow HTTP/1.1\r\nHost: appliance\r\nContent-Length: 1000000\r\n\r\n".to_vec(),
        Behaviour::ZeroWindow => {
            let body = 256 * 1024;
            let mut request =
                format!("POST /big HTTP/1.1\r\nHost: appliance\r\nContent-Length: {body}\r\n\r\n").into_bytes();
            request.resize(request.len() + body, b'z');
            request
        }
        Behaviour::Hold => b"GET /hold HTTP/1.1\r\nHost: appliance\r\n\r\n".to_vec(),
    }
}

/// One round for one client; false once the appliance ended the connection.
fn drive(client: &mut Client, behaviour: Behaviour) -> bool {
    // A reset shows here even while unread data waits (which `peek` would
    // return instead).
    if !matches!(client.stream.take_error(), Ok(None)) {
        return false;
    }
    if behaviour == Behaviour::SlowBody {
        let due = client.opened.elapsed().as_secs() / 2;
        if client.to_send.is_empty() && client.trickled < due {
            client.to_send.push(b'x');
            client.trickled += 1;
        }
    }
    while !client.to_send.is_empty() {
        match client.stream.write(&client.to_send) {
            Ok(0) => return false,
            Ok(written) => drop(client.to_send.drain(..written)),
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    let mut buffer = [0u8; 4096];
    if behaviour == Behaviour::ZeroWindow {
        // Never read: only look whether the connection is still there.
        return match client.stream.peek(&mut buffer[..1]) {
            Ok(0) => false,
            Ok(_) => true,
            Err(error) => error.kind() == ErrorKind::WouldBlock,
        };
    }
    loop {
        match client.stream.read(&mut buffer) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}
