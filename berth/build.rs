//! Link-time layout of the `berth` binary. On x86_64 Linux, where rustc links with LLD, the
//! functions named in `link-order.txt` (those a node agent and an API server run) are placed
//! together at the front of the text: a process then maps a few MB of contiguous code instead of
//! touching pages spread over the whole text, which is most of an idle agent's RSS.
//! `scripts/gen-link-order.sh` regenerates the list; names it no longer finds are skipped, so a
//! stale list only costs memory, never correctness. `BERTH_LINK_MAP=PATH` writes the linker's
//! map file, which that script reads.

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=BERTH_LINK_MAP");
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let arg = |a: &str| println!("cargo:rustc-link-arg-bin=berth=-Wl,{a}");
    arg(&format!("--symbol-ordering-file={dir}/link-order.txt"));
    arg("--no-warn-symbol-ordering");
    if let Ok(map) = std::env::var("BERTH_LINK_MAP") {
        arg(&format!("-Map={map}"));
    }
}
