"""wyngq.wyng.commands: every Wyng argv, by exact equality."""

from __future__ import annotations

from wyngq.wyng.commands import (
    InitOptions,
    WyngTarget,
    arch_check_command,
    arch_init_command,
    list_command,
    receive_command,
    receive_to_file_command,
    send_command,
    verify_command,
    version_command,
)

WYNG = "/usr/local/bin/wyng"
DEST = "file:/mnt/backup/laptop.wyng"
BASE = [WYNG, f"--dest={DEST}", "--config=/dev/null", "-u", "--authmin=0"]
TARGET = WyngTarget(WYNG, DEST)
WITH_META = WyngTarget(WYNG, DEST, meta_dir="/var/lib/wyng")
METADATA = "--import-other-from=wyng-qubes-metadata:|:/tmp/wq/qubes-metadata.tgz"


def test_base_options_every_call_carries() -> None:
    assert TARGET.base() == BASE


def test_base_with_meta_dir() -> None:
    assert WITH_META.base() == [*BASE, "--meta-dir=/var/lib/wyng"]


def test_empty_meta_dir_is_left_out() -> None:
    assert WyngTarget(WYNG, DEST, meta_dir="").base() == BASE


def test_base_returns_a_fresh_list_each_time() -> None:
    TARGET.base().append("--junk")
    assert TARGET.base() == BASE


def test_other_url_schemes_pass_through_as_one_word() -> None:
    target = WyngTarget("wyng", "qubes-ssh://backup:user@host:2222/srv/arch")
    assert list_command(target) == [
        "wyng",
        "--dest=qubes-ssh://backup:user@host:2222/srv/arch",
        "--config=/dev/null",
        "-u",
        "--authmin=0",
        "--json",
        "list",
    ]


def test_version() -> None:
    assert version_command(WYNG) == [WYNG, "version"]


def test_list() -> None:
    assert list_command(TARGET) == [*BASE, "--json", "list"]


def test_list_with_meta_dir() -> None:
    assert list_command(WITH_META) == [*BASE, "--meta-dir=/var/lib/wyng", "--json", "list"]


def test_arch_init_encrypted_by_default() -> None:
    assert arch_init_command(TARGET, InitOptions()) == [*BASE, "arch-init"]


def test_arch_init_unencrypted() -> None:
    assert arch_init_command(TARGET, InitOptions(encrypt=False)) == [*BASE, "--encrypt=off", "arch-init"]


def test_arch_init_every_option() -> None:
    options = InitOptions(encrypt=False, compression="zstd:7", hashtype="blake2b", chunk_factor=2)
    assert arch_init_command(WITH_META, options) == [
        *BASE,
        "--meta-dir=/var/lib/wyng",
        "--encrypt=off",
        "--compression=zstd:7",
        "--hashtype=blake2b",
        "--chunk-factor=2",
        "arch-init",
    ]


def test_arch_init_chunk_factor_zero_is_still_passed() -> None:
    assert arch_init_command(TARGET, InitOptions(chunk_factor=0)) == [*BASE, "--chunk-factor=0", "arch-init"]


def test_send_defaults_tag_qubes_and_send_unchanged() -> None:
    assert send_command(TARGET, local_from="/tmp/wq/volumes.json", metadata_file="/tmp/wq/qubes-metadata.tgz") == [
        *BASE,
        "--local-from=/tmp/wq/volumes.json",
        "--send-unchanged",
        "--remap",
        "--tag=qubes",
        METADATA,
        "send",
    ]


def test_send_with_every_option() -> None:
    argv = send_command(
        WITH_META,
        local_from="/tmp/wq/volumes.json",
        metadata_file="/tmp/wq/qubes-metadata.tgz",
        tags=("qubes", "weekly,sunday run"),
        dedup=True,
        autoprune="full",
        dry_run=True,
    )
    assert argv == [
        *BASE,
        "--meta-dir=/var/lib/wyng",
        "--local-from=/tmp/wq/volumes.json",
        "--send-unchanged",
        "--tag=qubes",
        "--tag=weekly,sunday run",
        "--dedup",
        "--autoprune=full",
        "--dry-run",
        METADATA,
        "send",
    ]


def test_send_without_tags() -> None:
    argv = send_command(TARGET, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz", tags=())
    assert argv == [
        *BASE,
        "--local-from=/tmp/v.json",
        "--send-unchanged",
        "--remap",
        "--import-other-from=wyng-qubes-metadata:|:/tmp/m.tgz",
        "send",
    ]


def test_send_autoprune_on() -> None:
    argv = send_command(TARGET, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz", tags=(), autoprune="on")
    assert argv == [
        *BASE,
        "--local-from=/tmp/v.json",
        "--send-unchanged",
        "--remap",
        "--autoprune=on",
        "--import-other-from=wyng-qubes-metadata:|:/tmp/m.tgz",
        "send",
    ]


def test_send_with_no_autoprune_leaves_wyngs_default() -> None:
    for off in (None, ""):
        argv = send_command(TARGET, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz", tags=(), autoprune=off)
        assert not any(a.startswith("--autoprune") for a in argv)


def test_send_ends_with_the_action_and_no_volume_words() -> None:
    argv = send_command(TARGET, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz")
    assert argv[-1] == "send"
    assert all(a.startswith("-") for a in argv[1:-1])


def test_receive_into_pools() -> None:
    assert receive_command(TARGET, local_from="/tmp/wq/recv.json", session="20261126-151117") == [
        *BASE,
        "--local-from=/tmp/wq/recv.json",
        "--session=20261126-151117",
        "--force",
        "--sparse-write",
        "receive",
    ]


def test_receive_into_pools_from_the_snapshot() -> None:
    argv = receive_command(WITH_META, local_from="/tmp/wq/recv.json", session="20261126-151117", use_snapshot=True)
    assert argv == [
        *BASE,
        "--meta-dir=/var/lib/wyng",
        "--local-from=/tmp/wq/recv.json",
        "--session=20261126-151117",
        "--force",
        "--sparse-write",
        "--use-snapshot",
        "receive",
    ]


def test_receive_one_volume_to_a_file() -> None:
    argv = receive_to_file_command(TARGET, "wyng-qubes-metadata", "20261126-151007", "/tmp/wq/meta.tgz")
    assert argv == [
        *BASE,
        "--save-to=/tmp/wq/meta.tgz",
        "--session=20261126-151007",
        "receive",
        "--",
        "wyng-qubes-metadata",
    ]


def test_verify_puts_volumes_after_double_dash() -> None:
    argv = verify_command(TARGET, "20261126-151007", ["appvms/work/private.img", "vm-templates/fedora/root.img"])
    assert argv == [
        *BASE,
        "--session=20261126-151007",
        "verify",
        "--",
        "appvms/work/private.img",
        "vm-templates/fedora/root.img",
    ]


def test_verify_a_volume_that_looks_like_an_option_stays_a_volume() -> None:
    argv = verify_command(TARGET, "20261126-151007", ["-a"])
    assert argv[-2:] == ["--", "-a"]


def test_arch_check_newest_by_default() -> None:
    assert arch_check_command(TARGET) == [*BASE, "--session=newest", "arch-check"]


def test_arch_check_one_session() -> None:
    assert arch_check_command(TARGET, "20261126-151007") == [*BASE, "--session=20261126-151007", "arch-check"]


def test_arch_check_everything() -> None:
    assert arch_check_command(TARGET, None) == [*BASE, "arch-check"]


def test_end_key_agent_command_is_a_listing_with_authmin_minus_one() -> None:
    from wyngq.wyng.commands import WyngTarget, end_key_agent_command

    assert end_key_agent_command(WyngTarget("/usr/bin/wyng", "file:/b")) == [
        "/usr/bin/wyng", "--dest=file:/b", "--config=/dev/null", "-u", "--authmin=-1", "--json", "list",
    ]


def test_send_imports_dom0_streams_after_the_settings_bundle() -> None:
    argv = send_command(TARGET, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz",
                        other_imports=[("wyng-qubes-dom0-home", "/var/lib/x/home.tar"),
                                       ("wyng-qubes-dom0-config", "/var/lib/x/config.tar")])
    assert argv[-4:] == [
        "--import-other-from=wyng-qubes-metadata:|:/tmp/m.tgz",
        "--import-other-from=wyng-qubes-dom0-home:|:/var/lib/x/home.tar",
        "--import-other-from=wyng-qubes-dom0-config:|:/var/lib/x/config.tar",
        "send",
    ]


def test_archive_care_goes_to_send_and_prune_only() -> None:
    from wyngq.wyng.commands import ArchiveCare, prune_command

    care = WyngTarget(WYNG, DEST, care=ArchiveCare(apdays="0:30:1:2", vouch=("reflink_fs_xfs",),
                                                    keep=("20250101-000000",)))
    send = send_command(care, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz", tags=("qubes", "weekly"))
    plain = send_command(TARGET, local_from="/tmp/v.json", metadata_file="/tmp/m.tgz", tags=("qubes", "weekly"))
    assert [a for a in send if a not in plain] == ["--apdays=0:30:1:2", "--vouch=reflink_fs_xfs"]
    assert send[-1] == "send" and "--keep=20250101-000000" not in send
    prune = prune_command(care, session="20250102-000000", all_volumes=True)
    assert prune == [*BASE, "--session=20250102-000000", "--apdays=0:30:1:2", "--vouch=reflink_fs_xfs",
                     "--keep=20250101-000000", "--all", "prune"]
    assert list_command(care) == [*BASE, "--json", "list"]
    assert care.base() == BASE
