//! Builds the kernel programs in bpf/ with clang against a vmlinux.h generated from the
//! running kernel's BTF, so that the object carries CO-RE relocations aya applies at load.
//!
//! Environment: PALISADE_CLANG (default `clang`), PALISADE_BPFTOOL (default `bpftool`),
//! PALISADE_VMLINUX_BTF (default /sys/kernel/btf/vmlinux). PALISADE_SKIP_BPF_BUILD=1 builds
//! the crate without the programs; the agent then says so at start and can only use the
//! /proc sensor.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &["bpf/palisade.bpf.c", "bpf/palisade.h"];

fn main() {
    for source in SOURCES {
        println!("cargo:rerun-if-changed={source}");
    }
    for variable in [
        "PALISADE_CLANG",
        "PALISADE_BPFTOOL",
        "PALISADE_VMLINUX_BTF",
        "PALISADE_SKIP_BPF_BUILD",
    ] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));
    let object = out_dir.join("palisade.bpf.o");
    let supported_arch = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    if !supported_arch {
        println!("cargo:warning=the eBPF programs are written for x86_64; building without them");
    }
    if !supported_arch || env::var("PALISADE_SKIP_BPF_BUILD").is_ok_and(|value| value == "1") {
        std::fs::write(&object, b"")
            .unwrap_or_else(|error| fail(&format!("writing {}: {error}", object.display())));
        println!("cargo:rustc-cfg=palisade_no_bpf");
        println!("cargo:rustc-check-cfg=cfg(palisade_no_bpf)");
        return;
    }
    println!("cargo:rustc-check-cfg=cfg(palisade_no_bpf)");
    let btf = env::var("PALISADE_VMLINUX_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());
    let vmlinux_h = out_dir.join("vmlinux.h");
    generate_vmlinux_header(&btf, &vmlinux_h);
    compile(&out_dir, &object);
}

fn generate_vmlinux_header(btf: &str, target: &Path) {
    let bpftool = env::var("PALISADE_BPFTOOL").unwrap_or_else(|_| "bpftool".into());
    let output = Command::new(&bpftool)
        .args(["btf", "dump", "file", btf, "format", "c"])
        .output()
        .unwrap_or_else(|error| {
            fail(&format!(
                "cannot run {bpftool} ({error}): install Debian's bpftool (apt-get install bpftool), \
                 or set PALISADE_SKIP_BPF_BUILD=1 to build without the eBPF sensor"
            ))
        });
    if !output.status.success() {
        fail(&format!(
            "{bpftool} btf dump file {btf} failed: {}; the kernel needs CONFIG_DEBUG_INFO_BTF \
             (or set PALISADE_VMLINUX_BTF to a BTF file)",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::write(target, &output.stdout)
        .unwrap_or_else(|error| fail(&format!("writing {}: {error}", target.display())));
}

fn compile(include_dir: &Path, object: &Path) {
    let clang = env::var("PALISADE_CLANG").unwrap_or_else(|_| "clang".into());
    let output = Command::new(&clang)
        .args(["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"])
        .arg("-D__TARGET_ARCH_x86")
        .arg("-I")
        .arg(include_dir)
        .arg("-I")
        .arg("bpf")
        .args(["-c", "bpf/palisade.bpf.c", "-o"])
        .arg(object)
        .output()
        .unwrap_or_else(|error| {
            fail(&format!(
                "cannot run {clang} ({error}): install clang and libbpf-dev \
                 (apt-get install clang llvm libbpf-dev bpftool), or set PALISADE_SKIP_BPF_BUILD=1"
            ))
        });
    if !output.status.success() {
        fail(&format!(
            "{clang} failed on bpf/palisade.bpf.c:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: palisade-agent build: {message}");
    std::process::exit(1);
}
