//! Host tests of the whole engine, through its public API only: a scripted
//! client (`client`), scenario tests for every behaviour the appliance
//! promises (`scenarios`, `limits`), what a request can ask of its answer
//! (`options`), the HTML page and its escaping (`html`), streaming and backpressure (`streaming`),
//! property tests (`properties`) and the stable fuzz smoke test (`smoke`).

mod client;
mod html;
mod limits;
mod operations;
mod options;
mod properties;
mod scenarios;
mod smoke;
mod streaming;
