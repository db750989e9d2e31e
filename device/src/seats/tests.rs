//! Unit tests of the seat rules: one test (or more) per rule, on the pool
//! with hand-made limits, on the store, and through the agent against
//! real (test-key) licenses.

use std::io::Cursor;

use tessera_verifier::encode::{LicenseData, SharingData};
use tessera_verifier::samples::{self, DAY, T0};
use tessera_verifier::{armor, MAX_OBJECT_LEN};

use super::db::SeatDb;
use super::limits::{over_assigned, Counts, Key, Limits, Summary};
use super::mass::{self, Stage};
use super::model::{check_extension, check_user, SeatId, SeatLicense};
use super::names::Names;
use super::pool::{NewSeat, Pool};
use super::session::{Filter, SeatOptions};
use super::*;
use crate::agent::{Agent, AgentOptions};
use crate::catalog::{Catalog, CodeKind};
use crate::error::AgentError;
use crate::testing::{answer, sign, write_keyring, Tree};

const UC_BUSINESS: SeatLicense = SeatLicense::Profile(3);
const PHONE: SeatLicense = SeatLicense::Base(4);
const CALL_GROUP: SeatLicense = SeatLicense::Base(2);

fn folder(dir: &std::path::Path) -> crate::store::Folder {
    crate::store::Folder::open(dir, false).unwrap().unwrap()
}

fn names() -> Names {
    Names::default()
}

fn id(n: u32) -> SeatId {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&n.to_be_bytes());
    SeatId::from_random_bytes(b)
}

fn seat(user: &str, license: SeatLicense, extension: Option<&str>, addons: &[u16]) -> NewSeat {
    NewSeat {
        user: user.into(),
        extension: extension.map(Into::into),
        license,
        addons: addons.to_vec(),
    }
}

/// UC-BUSINESS ×10; Phone System ×5 with call_recording ×2 and
/// device_ip_phone ×5; Call Group ×3 with device_desktop_app ×3.
fn limits() -> Limits {
    Limits::new()
        .profile(1, 20)
        .profile(3, 10)
        .base(4, 5, &[(1, 2), (4, 5)])
        .base(2, 3, &[(2, 3)])
}

fn assign(p: &mut Pool, l: &Limits, n: u32, s: NewSeat) -> Result<SeatId, SeatError> {
    p.assign(l, s, id(n), T0 + i64::from(n), &names())
}

// ---------------------------------------------------------------- model

#[test]
fn seat_ids_are_random_v4_uuids_that_parse_back() {
    let a = SeatId::random().unwrap();
    let b = SeatId::random().unwrap();
    assert_ne!(a, b);
    let text = a.to_string();
    assert_eq!(text.len(), 36);
    let parts: Vec<&str> = text.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'), "{text}");
    assert!(
        matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
        "{text}"
    );
    assert_eq!(text.parse::<SeatId>().unwrap(), a);
    assert_eq!(text.to_uppercase().parse::<SeatId>().unwrap(), a);
    assert!("not-a-uuid".parse::<SeatId>().is_err());
    assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{text}\""));
}

#[test]
fn users_and_extensions_are_checked() {
    assert_eq!(
        check_user("  alice@example.com ").unwrap(),
        "alice@example.com"
    );
    for bad in ["", "   ", "a\u{7}b", &"x".repeat(129)] {
        let e = check_user(bad).unwrap_err();
        assert_eq!(e.code(), "bad_user", "{bad:?}");
    }
    assert_eq!(check_extension(" 1001 ").unwrap(), "1001");
    assert_eq!(check_extension("+4930123").unwrap(), "+4930123");
    for bad in ["", "+", "12a", "1 2", "++1", &"1".repeat(33)] {
        let e = check_extension(bad).unwrap_err();
        assert!(e.to_string().contains("digits"), "{bad:?}: {e}");
    }
}

// ---------------------------------------------------------------- names

#[test]
fn names_by_catalog_name_or_code() {
    let n = names();
    assert!(n.is_builtin());
    assert_eq!(n.profile("UC-BUSINESS").unwrap(), UC_BUSINESS);
    assert_eq!(n.profile("uc-business").unwrap(), UC_BUSINESS);
    assert_eq!(n.profile("3").unwrap(), UC_BUSINESS);
    assert_eq!(n.base("Phone System").unwrap(), PHONE);
    assert_eq!(n.base("4").unwrap(), PHONE);
    assert_eq!(n.addon("call_recording").unwrap(), 1);
    assert_eq!(
        n.addon("license_call_recording_unlimited_enabled").unwrap(),
        9
    );
    assert_eq!(n.addon("12").unwrap(), 12);
    let e = n.addon("call_recordings").unwrap_err().to_string();
    assert!(e.contains("unknown add-on `call_recordings`"), "{e}");
    assert!(e.contains("call_recording, device_desktop_app"), "{e}");
    assert!(n.profile("99999").is_err());
    assert_eq!(n.phone_system(), 4);
    assert_eq!(n.license_name(SeatLicense::Profile(77)), "profile 77");
    assert_eq!(n.addon_name(77), "add-on 77");
}

#[test]
fn extension_keys_name_base_licenses_and_profiles() {
    let n = names();
    assert_eq!(n.license_key("Phone System").unwrap(), PHONE);
    assert_eq!(n.license_key("4").unwrap(), PHONE);
    assert_eq!(n.license_key("base:call group").unwrap(), CALL_GROUP);
    assert_eq!(n.license_key("profile:UC-BUSINESS").unwrap(), UC_BUSINESS);
    assert_eq!(n.license_key("profile:3").unwrap(), UC_BUSINESS);
    assert_eq!(n.license_key("UC-BUSINESS").unwrap(), UC_BUSINESS);
    assert!(n.license_key("Fax").is_err());
    for l in [
        PHONE,
        CALL_GROUP,
        UC_BUSINESS,
        SeatLicense::Base(99),
        SeatLicense::Profile(99),
    ] {
        assert_eq!(n.license_key(&n.license_key_of(l)).unwrap(), l);
    }
    let both = Catalog::parse(
        "[[profile]]\ncode = 1\nname = \"Standard\"\n[[base]]\ncode = 7\nname = \"Standard\"\n",
    )
    .unwrap();
    let n = Names::new(Some(&both));
    assert_eq!(
        n.license_key("standard").unwrap_err().code(),
        "unknown_name"
    );
    assert_eq!(
        n.license_key("base:standard").unwrap(),
        SeatLicense::Base(7)
    );
    // An export names such a base license `base:NAME`, so it reads back.
    for l in [SeatLicense::Base(7), SeatLicense::Profile(1)] {
        assert_eq!(n.license_key(&n.license_key_of(l)).unwrap(), l);
    }
    assert_eq!(n.license_key_of(SeatLicense::Base(7)), "base:Standard");
    // A vendor catalog replaces the default names; its Phone System code counts.
    let vendor = Catalog::parse("[[base]]\ncode = 9\nname = \"Phone System\"\n").unwrap();
    let n = Names::new(Some(&vendor));
    assert_eq!(n.phone_system(), 9);
    assert!(n.profile("UC-BUSINESS").is_err());
    assert_eq!(
        Catalog::builtin().name(CodeKind::Addon, 4),
        Some("device_ip_phone")
    );
}

// ---------------------------------------------------------------- counts

#[test]
fn an_assignment_beyond_the_licensed_count_is_refused_with_the_counts() {
    let l = limits();
    let mut p = Pool::default();
    for n in 0..10 {
        assign(
            &mut p,
            &l,
            n,
            seat(&format!("u{n}"), UC_BUSINESS, None, &[]),
        )
        .unwrap();
    }
    let e = assign(&mut p, &l, 10, seat("u10", UC_BUSINESS, None, &[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "UC-BUSINESS: 10 licensed, 10 assigned; unassign one or order more"
    );
    assert_eq!(e.code(), "seat_limit");
    assert_eq!(p.counts().get(Key::Profile(3)), 10);
    // A profile the license lists with 0, or not at all.
    let e = assign(
        &mut p,
        &l,
        11,
        seat("x", SeatLicense::Profile(6), None, &[]),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "PBX-SERVICE: 0 licensed, 0 assigned; the license has none, order some first"
    );
    // Freeing one makes room again.
    p.unassign(id(3)).unwrap();
    assign(&mut p, &l, 12, seat("u10", UC_BUSINESS, None, &[])).unwrap();
}

#[test]
fn addons_only_where_the_license_lists_them_for_the_base() {
    let l = limits();
    let mut p = Pool::default();
    // device_desktop_app (2) is listed for Call Group, not for Phone System.
    let e = assign(&mut p, &l, 1, seat("a", PHONE, Some("1001"), &[2])).unwrap_err();
    assert_eq!(e.code(), "addon_not_licensed");
    assert_eq!(
        e.to_string(),
        "add-on device_desktop_app is not licensed for the Phone System base license (the license lists call_recording, device_ip_phone for it); order it for Phone System or leave it out"
    );
    assert!(p.is_empty());
    // Add-ons on a profile.
    let e = assign(&mut p, &l, 1, seat("a", UC_BUSINESS, None, &[1])).unwrap_err();
    assert_eq!(e.code(), "addon_on_profile");
    // Add-on counts: call_recording ×2 on Phone System.
    assign(&mut p, &l, 1, seat("a", PHONE, Some("1001"), &[1, 4])).unwrap();
    assign(&mut p, &l, 2, seat("b", PHONE, Some("1002"), &[1])).unwrap();
    let e = assign(&mut p, &l, 3, seat("c", PHONE, Some("1003"), &[1])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "call_recording on Phone System: 2 licensed, 2 assigned; unassign one or order more"
    );
    // Nothing of the refused seat was kept.
    assert_eq!(p.counts().get(Key::Base(4)), 2);
    assign(&mut p, &l, 3, seat("c", PHONE, Some("1003"), &[4])).unwrap();
    // `seats addons` follows the same rules.
    let e = p.set_addons(&l, id(3), &[1], &[], &names()).unwrap_err();
    assert_eq!(e.code(), "seat_limit");
    let e = p.set_addons(&l, id(3), &[2], &[], &names()).unwrap_err();
    assert_eq!(e.code(), "addon_not_licensed");
    let s = p.set_addons(&l, id(1), &[], &[1], &names()).unwrap();
    assert_eq!(s.addons, [4]);
    let s = p.set_addons(&l, id(3), &[1], &[4], &names()).unwrap();
    assert_eq!(s.addons, [1]);
    assert_eq!(p.counts().get(Key::Addon { base: 4, addon: 4 }), 1);
    let e = p.set_addons(&l, id(3), &[1], &[1], &names()).unwrap_err();
    assert_eq!(e.code(), "bad_addons");
}

#[test]
fn a_user_holds_one_seat_per_license_and_one_profile_and_numbers_are_unique() {
    let l = limits();
    let mut p = Pool::default();
    assign(&mut p, &l, 1, seat("alice", UC_BUSINESS, None, &[])).unwrap();
    let e = assign(&mut p, &l, 2, seat("alice", UC_BUSINESS, None, &[])).unwrap_err();
    assert_eq!(e.code(), "user_has_seat");
    let e = assign(
        &mut p,
        &l,
        2,
        seat("alice", SeatLicense::Profile(1), None, &[]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("already has the profile UC-BUSINESS"),
        "{e}"
    );
    // A base license next to the profile is fine.
    assign(&mut p, &l, 3, seat("alice", PHONE, Some("1001"), &[])).unwrap();
    let e = assign(&mut p, &l, 4, seat("bob", PHONE, Some("1001"), &[])).unwrap_err();
    assert_eq!(e.code(), "extension_taken");
    assert!(e.to_string().contains("(alice)"), "{e}");
}

#[test]
fn unassigned_seats_keep_extension_and_addons_and_count_again_when_reassigned() {
    let l = Limits::new().base(4, 1, &[(1, 1)]);
    let mut p = Pool::default();
    assign(&mut p, &l, 1, seat("alice", PHONE, Some("1001"), &[1])).unwrap();
    let s = p.unassign(id(1)).unwrap();
    assert_eq!(s.user, None);
    assert_eq!(s.extension.as_deref(), Some("1001"));
    assert_eq!(p.counts().get(Key::Base(4)), 0);
    assert_eq!(p.unassign(id(1)).unwrap_err().code(), "seat_not_assigned");
    // Its number stays reserved.
    assert_eq!(
        assign(&mut p, &l, 2, seat("bob", PHONE, Some("1001"), &[]))
            .unwrap_err()
            .code(),
        "extension_taken"
    );
    assign(&mut p, &l, 2, seat("bob", PHONE, Some("1002"), &[])).unwrap();
    // Reassigning the idle seat would be a second Phone System seat.
    let e = p.reassign(&l, id(1), "carol", T0, &names()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Phone System: 1 licensed, 1 assigned; unassign one or order more"
    );
    p.terminate(id(2)).unwrap();
    let s = p.reassign(&l, id(1), "carol", T0 + 9, &names()).unwrap();
    assert_eq!(
        (s.id, s.user.as_deref(), s.assigned),
        (id(1), Some("carol"), Some(T0 + 9))
    );
    assert_eq!(p.counts().get(Key::Addon { base: 4, addon: 1 }), 1);
    // Moving an assigned seat changes no count, even at the limit.
    let s = p.reassign(&l, id(1), "dave", T0 + 10, &names()).unwrap();
    assert_eq!(s.user.as_deref(), Some("dave"));
    assert_eq!(p.unassign_user("dave").unwrap().len(), 1);
    assert_eq!(
        p.unassign_user("dave").unwrap_err().code(),
        "seat_not_found"
    );
}

#[test]
fn a_lowered_count_deletes_nothing_reports_the_latest_and_refuses_new_ones() {
    let before = limits();
    let mut p = Pool::default();
    for n in 0..10 {
        assign(
            &mut p,
            &before,
            n,
            seat(&format!("u{n}"), UC_BUSINESS, None, &[]),
        )
        .unwrap();
    }
    let lowered = Limits::new().profile(3, 8);
    let over = over_assigned(p.seats(), &lowered, &names());
    assert_eq!(over.len(), 1);
    let o = &over[0];
    assert_eq!((o.licensed, o.assigned, o.over), (8, 10, 2));
    let late: Vec<&str> = o.assignments.iter().map(|a| a.user.as_str()).collect();
    assert_eq!(late, ["u8", "u9"]);
    assert_eq!(
        o.message(),
        "UC-BUSINESS: 8 licensed, 10 assigned, 2 over the limit; new ones are refused until 2 are unassigned or more are ordered"
    );
    assert_eq!(p.len(), 10);
    let e = assign(&mut p, &lowered, 20, seat("new", UC_BUSINESS, None, &[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "UC-BUSINESS: 8 licensed, 10 assigned (over the limit since the license changed); unassign 3 or order more"
    );
    p.unassign(id(9)).unwrap();
    p.terminate(id(8)).unwrap();
    assert!(over_assigned(p.seats(), &lowered, &names()).is_empty());
    assert_eq!(
        assign(&mut p, &lowered, 20, seat("new", UC_BUSINESS, None, &[]))
            .unwrap_err()
            .to_string(),
        "UC-BUSINESS: 8 licensed, 8 assigned; unassign one or order more"
    );
    p.unassign(id(7)).unwrap();
    assign(&mut p, &lowered, 20, seat("new", UC_BUSINESS, None, &[])).unwrap();
    // Add-on counts are reported the same way.
    let mut p = Pool::default();
    assign(&mut p, &before, 1, seat("a", PHONE, None, &[1])).unwrap();
    assign(&mut p, &before, 2, seat("b", PHONE, None, &[1])).unwrap();
    let over = over_assigned(p.seats(), &Limits::new().base(4, 5, &[(1, 1)]), &names());
    assert_eq!(over[0].name, "call_recording on Phone System");
    assert_eq!(over[0].assignments[0].user, "b");
}

#[test]
fn without_service_only_unassign_terminate_and_removing_addons_work() {
    let l = limits();
    let mut p = Pool::default();
    assign(&mut p, &l, 1, seat("a", PHONE, Some("1001"), &[1])).unwrap();
    assign(&mut p, &l, 2, seat("b", UC_BUSINESS, None, &[])).unwrap();
    let blocked = limits().blocked_for("the license gives no full service (locked)");
    let e = assign(&mut p, &blocked, 3, seat("c", UC_BUSINESS, None, &[])).unwrap_err();
    assert_eq!(e.code(), "no_service");
    assert_eq!(
        e.to_string(),
        "no new assignments: the license gives no full service (locked); unassign and terminate still work"
    );
    assert_eq!(
        p.reassign(&blocked, id(2), "c", T0, &names())
            .unwrap_err()
            .code(),
        "no_service"
    );
    assert_eq!(
        p.set_addons(&blocked, id(1), &[4], &[], &names())
            .unwrap_err()
            .code(),
        "no_service"
    );
    p.set_addons(&blocked, id(1), &[], &[1], &names()).unwrap();
    p.unassign(id(2)).unwrap();
    p.terminate(id(1)).unwrap();
    assert_eq!(p.counts(), &Counts::default());
    let none = Limits::unavailable("no license is installed");
    assert_eq!(
        assign(&mut p, &none, 4, seat("d", PHONE, None, &[]))
            .unwrap_err()
            .code(),
        "no_service"
    );
}

#[test]
fn seats_resolve_by_uuid_or_unique_prefix() {
    let l = limits();
    let mut p = Pool::default();
    assign(&mut p, &l, 0x1111_0000, seat("a", UC_BUSINESS, None, &[])).unwrap();
    assign(&mut p, &l, 0x1122_0000, seat("b", UC_BUSINESS, None, &[])).unwrap();
    assert_eq!(
        p.resolve(&id(0x1111_0000).to_string()).unwrap(),
        id(0x1111_0000)
    );
    assert_eq!(p.resolve("11110").unwrap(), id(0x1111_0000));
    assert_eq!(p.resolve("11").unwrap_err().code(), "bad_seat_id");
    assert_eq!(p.resolve("1111").unwrap(), id(0x1111_0000));
    assert_eq!(p.resolve("112").unwrap_err().code(), "bad_seat_id");
    assert_eq!(p.resolve("11x2").unwrap_err().code(), "bad_seat_id");
    assert_eq!(p.resolve("1122").unwrap(), id(0x1122_0000));
    assert!(matches!(
        p.resolve("ffff").unwrap_err(),
        SeatError::NotFound(_)
    ));
    let mut q = Pool::default();
    assign(&mut q, &l, 0x1111_0000, seat("a", UC_BUSINESS, None, &[])).unwrap();
    assign(&mut q, &l, 0x1111_0001, seat("b", UC_BUSINESS, None, &[])).unwrap();
    assert!(matches!(
        q.resolve("1111").unwrap_err(),
        SeatError::AmbiguousSeat(_)
    ));
}

#[test]
fn summary_lists_licensed_assigned_available_and_over() {
    let l = limits();
    let mut p = Pool::default();
    assign(&mut p, &l, 1, seat("a", PHONE, Some("1001"), &[1])).unwrap();
    let lowered = Limits::new().base(4, 0, &[]);
    let s = Summary::new(&lowered, p.counts(), 0, &names());
    let phone = s.entries.iter().find(|e| e.kind == "base").unwrap();
    assert_eq!(
        (phone.licensed, phone.assigned, phone.available, phone.over),
        (0, 1, 0, 1)
    );
    // The add-on in use is listed although the license no longer names it.
    let addon = s.entries.iter().find(|e| e.kind == "addon").unwrap();
    assert_eq!((addon.code, addon.base, addon.over), (1, Some(4), 1));
    assert!(s.render().contains("OVER BY 1"), "{}", s.render());
    let s = Summary::new(&l, p.counts(), 3, &names());
    assert!(s.may_assign);
    let text = s.render();
    assert!(text.contains("UC-BUSINESS (3)"), "{text}");
    assert!(text.contains("3 unassigned seat(s)"), "{text}");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["entries"][0]["name"], "PBX-BASIC");
}

// ---------------------------------------------------------------- store

#[test]
fn the_store_keeps_seats_across_opens_and_recounts_like_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let l = limits();
    {
        let mut db = SeatDb::open(&folder(dir.path()), None).unwrap();
        db.change(
            |p| {
                assign(p, &l, 1, seat("alice", PHONE, Some("1001"), &[4, 1]))?;
                assign(p, &l, 2, seat("bob", UC_BUSINESS, None, &[]))?;
                assign(p, &l, 3, seat("carol", CALL_GROUP, Some("2001"), &[2]))
            },
            None,
        )
        .unwrap();
        db.change(|p| p.unassign(id(3)), None).unwrap();
    }
    let db = SeatDb::open_existing(&folder(dir.path())).unwrap().unwrap();
    let seats = db.load().unwrap();
    assert_eq!(seats.len(), 3);
    let alice = seats.iter().find(|s| s.id == id(1)).unwrap();
    assert_eq!(alice.addons, [1, 4]);
    assert_eq!(alice.created, T0 + 1);
    assert_eq!(db.counts().unwrap(), Counts::recount(&seats));
    assert_eq!(db.unassigned().unwrap(), 1);
    // A failed change writes nothing.
    let mut db = SeatDb::open(&folder(dir.path()), None).unwrap();
    let e = db
        .change(
            |p| {
                p.terminate(id(1))?;
                assign(p, &l, 9, seat("bob", UC_BUSINESS, None, &[]))
            },
            None,
        )
        .unwrap_err();
    assert_eq!(e.code(), "user_has_seat");
    assert_eq!(db.load().unwrap(), seats);
    assert!(
        SeatDb::open_existing(&folder(tempfile::tempdir().unwrap().path()))
            .unwrap()
            .is_none()
    );
}

#[test]
fn numbers_and_users_can_move_between_stored_seats_in_one_change() {
    let dir = tempfile::tempdir().unwrap();
    let l = limits();
    let mut db = SeatDb::open(&folder(dir.path()), None).unwrap();
    let csv1 = "extension_key,number,user\nPhone System,1001,alice\nPhone System,1002,bob\n";
    let csv2 = "extension_key,number,user\nPhone System,1002,alice\nPhone System,1001,bob\n";
    for text in [csv1, csv2] {
        let (rows, mut errors) = mass::read_rows(text.as_bytes(), &names()).unwrap();
        db.change(
            |p| mass::apply_rows(p, &l, rows, &mut errors, T0, &names(), &mut |_, _, _| {}),
            None,
        )
        .unwrap();
        assert!(errors.is_empty(), "{errors:?}");
    }
    let by_user: std::collections::BTreeMap<_, _> = db
        .load()
        .unwrap()
        .into_iter()
        .map(|s| (s.user.unwrap(), s.extension.unwrap()))
        .collect();
    assert_eq!(by_user["alice"], "1002");
    assert_eq!(by_user["bob"], "1001");
}

#[test]
fn a_fail_point_mid_write_leaves_the_store_as_it_was() {
    for point in SeatFailPoint::ALL {
        let dir = tempfile::tempdir().unwrap();
        let hook = SeatHook {
            point,
            action: crate::store::FailAction::Fail,
        };
        let mut db = SeatDb::open(&folder(dir.path()), Some(hook)).unwrap();
        let l = Limits::new().profile(1, 1000);
        let e = db
            .change(
                |p| {
                    for n in 0..100 {
                        assign(
                            p,
                            &l,
                            n,
                            seat(&format!("u{n}"), SeatLicense::Profile(1), None, &[]),
                        )?;
                    }
                    Ok(())
                },
                None,
            )
            .unwrap_err();
        assert_eq!(e.code(), "fail_point", "{point:?}");
        drop(db);
        let db = SeatDb::open(&folder(dir.path()), None).unwrap();
        assert!(db.load().unwrap().is_empty(), "{point:?}");
    }
    assert_eq!(
        SeatHook::parse("seats-half-written:pause").unwrap().point,
        SeatFailPoint::HalfWritten
    );
    assert!(SeatHook::parse("license-renamed").is_none());
}

// ---------------------------------------------------------------- import

fn import(db: &mut SeatDb, l: &Limits, text: &str) -> Result<mass::ImportOutcome, SeatError> {
    let (rows, mut errors) = mass::read_rows(text.as_bytes(), &names())?;
    db.change(
        |p| {
            let out = mass::apply_rows(p, l, rows, &mut errors, T0, &names(), &mut |_, _, _| {})?;
            if errors.is_empty() {
                Ok(out)
            } else {
                Err(SeatError::Import {
                    rows: core::mem::take(&mut errors),
                    more: 0,
                })
            }
        },
        None,
    )
}

const MASS: &str = "\u{feff}Extension Key,Number,User,Add-on 1,Add-on 2\r\n\
# a comment\r\n\
Phone System,1001,alice@example.com,call_recording,device_ip_phone\r\n\
\r\n\
4,1002,\"Smith, Anna\",4,\r\n\
Call Group,2001,support,device_desktop_app\r\n\
profile:UC-BUSINESS,,bob@example.com,,\r\n";

/// OWASP CSV injection: user names a spreadsheet would run as formulas
/// are exported as text (a leading `'`) and imported back unchanged.
#[test]
fn a_formula_in_a_user_name_is_exported_as_text_and_imported_back() {
    let mut db = SeatDb::in_memory().unwrap();
    let l = limits();
    let users = [
        "=HYPERLINK(\"http://evil.example/\",\"click\")",
        "+1 boss",
        "-minus",
        "@SUM(A1:A9)",
        "'quoted",
        "'=already quoted",
    ];
    let mut csv = String::from("extension_key,number,user\n");
    for (i, u) in users.iter().enumerate() {
        let number = if i == 0 { "+4930123" } else { "" };
        // As a spreadsheet would save it: formulas as text (a leading ').
        let cell = mass::neutralize(u).replace('"', "\"\"");
        csv.push_str(&format!("profile:1,{number},\"{cell}\"\n"));
    }
    assert_eq!(import(&mut db, &l, &csv).unwrap().created, 6);
    // A formula written plainly by hand is a user name like any other.
    let plain = "extension_key,number,user\nprofile:1,,=1+1\n";
    assert_eq!(import(&mut db, &l, plain).unwrap().created, 1);
    let mut users = users.to_vec();
    users.push("=1+1");
    let seats = db.load().unwrap();
    let mut out = Vec::new();
    mass::export(&seats, &names(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(out.as_bytes());
    let cells: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    for row in &cells {
        for cell in row {
            let first = cell.chars().next();
            assert!(
                !matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r')),
                "{cell:?} would be a formula:\n{out}"
            );
        }
    }
    assert!(out.contains("'=HYPERLINK("), "{out}");
    assert!(out.contains("'+4930123"), "{out}");
    assert!(out.contains("''=already quoted"), "{out}");
    assert!(out.contains(",'quoted"), "{out}");
    // Imported back: the same users and numbers, nothing changed.
    let back = import(&mut db, &l, &out).unwrap();
    assert_eq!((back.created, back.changed, back.unchanged), (0, 0, 7));
    assert_eq!(db.load().unwrap(), seats);
    let mut names_back: Vec<String> = seats.iter().filter_map(|s| s.user.clone()).collect();
    names_back.sort();
    let mut want: Vec<String> = users.iter().map(|u| (*u).to_owned()).collect();
    want.sort();
    assert_eq!(names_back, want);
}

/// Spreadsheets that trim leading spaces on import, or read full-width
/// operators as formulas too, see `  =1+1` and `＝1+1` as formulas: such
/// cells are written with a leading `'` as well, and read back exactly.
#[test]
fn formulas_behind_spaces_or_in_full_width_are_neutralized_too() {
    for cell in [
        " =1+1",
        "\u{3000}+1",
        "\u{a0}@SUM(A1)",
        "\u{ff1d}1+1",
        "\u{ff0b}49",
        "\u{ff0d}1",
        "\u{ff20}SUM(A1)",
        "  \u{ff1d}x",
    ] {
        let out = mass::neutralize(cell);
        assert_eq!(out, format!("'{cell}"), "{cell:?}");
        assert_eq!(mass::restore(&out), cell, "{cell:?}");
        // A spreadsheet keeps the ': it reads back the same.
        assert_eq!(mass::neutralize(&format!("'{cell}")), format!("''{cell}"));
    }
    for cell in ["a =1", "x\u{ff1d}", " a", "\u{ff21}"] {
        assert_eq!(mass::neutralize(cell), cell, "{cell:?}");
        assert_eq!(mass::restore(cell), cell, "{cell:?}");
    }
}

#[test]
fn import_reads_the_mass_configuration_shape_and_is_idempotent() {
    let mut db = SeatDb::in_memory().unwrap();
    let l = limits();
    let out = import(&mut db, &l, MASS).unwrap();
    assert_eq!(
        (out.rows, out.created, out.changed, out.unchanged),
        (4, 4, 0, 0)
    );
    let seats = db.load().unwrap();
    let anna = seats
        .iter()
        .find(|s| s.user.as_deref() == Some("Smith, Anna"))
        .unwrap();
    assert_eq!(
        (
            anna.license,
            anna.extension.as_deref(),
            anna.addons.as_slice()
        ),
        (PHONE, Some("1002"), &[4][..])
    );
    // The same file again: nothing changes, not even the times.
    let again = import(&mut db, &l, MASS).unwrap();
    assert_eq!((again.created, again.changed, again.unchanged), (0, 0, 4));
    assert_eq!(db.load().unwrap(), seats);
    // Export, then import of the export: unchanged.
    let mut csv = Vec::new();
    assert_eq!(mass::export(&seats, &names(), &mut csv).unwrap(), 4);
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv,
        "extension_key,number,user,addon_1,addon_2\n\
         profile:UC-BUSINESS,,bob@example.com,,\n\
         Call Group,2001,support,device_desktop_app,\n\
         Phone System,1001,alice@example.com,call_recording,device_ip_phone\n\
         Phone System,1002,\"Smith, Anna\",device_ip_phone,\n"
    );
    let back = import(&mut db, &l, &csv).unwrap();
    assert_eq!(back.unchanged, 4);
    // A row changes the user's seat in place: number and add-ons.
    let out = import(
        &mut db,
        &l,
        "extension_key,number,user,addon_1\nPhone System,1005,alice@example.com,\n",
    )
    .unwrap();
    assert_eq!(out.changed, 1);
    let alice = db
        .load()
        .unwrap()
        .into_iter()
        .find(|s| s.user.as_deref() == Some("alice@example.com"))
        .unwrap();
    assert_eq!(
        (alice.extension.as_deref(), alice.addons.len()),
        (Some("1005"), 0)
    );
}

#[test]
fn a_bad_row_is_reported_with_its_line_and_the_import_changes_nothing() {
    let mut db = SeatDb::in_memory().unwrap();
    let l = limits();
    import(
        &mut db,
        &l,
        "extension_key,number,user\nprofile:UC-BUSINESS,,keep\n",
    )
    .unwrap();
    let before = db.load().unwrap();
    let text = "extension_key,number,user,addon_1\n\
                Phone System,1001,alice,call_recording\n\
                Phone System,10x1,bob,\n\
                Fax,1003,carol,\n\
                Phone System,1004,dave,device_desktop_app\n\
                Phone System,1001,erin,\n\
                Phone System,1006,alice,\n\
                profile:UC-BUSINESS,,,\n\
                Phone System,1008,frank,call_recording,extra\n";
    let e = import(&mut db, &l, text).unwrap_err();
    let SeatError::Import { rows, .. } = &e else {
        panic!("{e}")
    };
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9], "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("the import was refused and changed nothing: 7 row(s) are wrong"),
        "{msg}"
    );
    assert!(
        msg.contains("line 3: extension `10x1` is not a number"),
        "{msg}"
    );
    assert!(msg.contains("line 4: unknown base license `Fax`"), "{msg}");
    assert!(
        msg.contains("line 5: add-on device_desktop_app is not licensed for the Phone System"),
        "{msg}"
    );
    assert!(
        msg.contains("line 6: extension 1001 is also used by line 2"),
        "{msg}"
    );
    assert!(
        msg.contains("line 7: alice is given Phone System again (first on line 2)"),
        "{msg}"
    );
    assert!(msg.contains("line 8: `user` is empty"), "{msg}");
    assert!(
        msg.contains("line 9: 5 cells, but the header has 4 columns"),
        "{msg}"
    );
    assert_eq!(db.load().unwrap(), before);
    // Counts over the licence: the first row past the limit is named.
    let mut rows = String::from("extension_key,number,user\n");
    for n in 0..6 {
        rows.push_str(&format!("Phone System,{},user{n}\n", 3000 + n));
    }
    let e = import(&mut db, &l, &rows).unwrap_err().to_string();
    assert!(
        e.contains("line 7: Phone System: 5 licensed, 5 assigned; unassign one or order more"),
        "{e}"
    );
    assert_eq!(db.load().unwrap(), before);
}

#[test]
fn bad_files_are_refused_whole() {
    let n = names();
    for (text, want) in [
        ("", "the file is empty"),
        (
            "user,number,extension_key\n",
            "line 1: the header is `user,number,extension_key`",
        ),
        ("extension_key,number,user,addon_2\n", "addon_1"),
        ("extension_key,number\n", "the header is"),
    ] {
        let e = mass::read_rows(text.as_bytes(), &n)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let (rows, errors) =
        mass::read_rows(&b"extension_key,number,user\n4,1,\xff\xfe\n"[..], &n).unwrap();
    assert!(rows.is_empty());
    assert!(errors[0].message.contains("UTF-8"), "{errors:?}");
    let (rows, errors) = mass::read_rows("extension_key,number,user\n".as_bytes(), &n).unwrap();
    assert!(rows.is_empty() && errors.is_empty());
}

/// RFC 4180 quoting, strictly: a cell is quoted as a whole, from its
/// first character, and its quotes are doubled. An unterminated quote
/// would swallow the rest of the file into one cell, and text after a
/// closing quote (`"al"ice"`) or a quote inside an unquoted cell would be
/// taken as part of the name: each is refused with its line.
#[test]
fn malformed_quoting_is_refused_with_its_line() {
    let n = names();
    let head = "extension_key,number,user\n";
    for (body, want) in [
        (
            "profile:1,,alice\nprofile:2,,\"al\"ice\"\nprofile:3,,bob\n",
            &["line 3:", "after the closing quote"][..],
        ),
        (
            "profile:1,,alice\nprofile:2,,\"a@x,\nprofile:3,,bob\nprofile:4,,carol\n",
            &["line 3:", "never closed"],
        ),
        (
            "profile:1,,al\"ice\n",
            &["line 2:", "does not start with one"],
        ),
        (
            "profile:1,, \"Smith, Anna\"\n",
            &["line 2:", "does not start with one"],
        ),
        (
            "profile:1,,\"a\"\"b\nc\"x\nprofile:2,,\"d\"e\"\n",
            &["line 3:", "line 4:"],
        ),
    ] {
        let text = format!("{head}{body}");
        let e = mass::read_rows(text.as_bytes(), &n).unwrap_err();
        assert_eq!(e.code(), "bad_csv", "{text:?}");
        let e = e.to_string();
        for w in want {
            assert!(e.contains(w), "{text:?}: {w} not in {e}");
        }
    }
    // Well-formed quoting reads as before: commas, doubled quotes, line
    // breaks inside a quoted cell (counted in the line numbers), CRLF, a
    // comment line holding a stray quote, a byte order mark.
    let text = "\u{feff}extension_key,number,user\r\n\
                # a \"comment\r\n\
                profile:1,,\"Smith, Anna\"\r\n\
                \"profile:2\",\"\",\"O\"\"Brien\"\r\n\
                profile:3,,bob\r\n";
    let (rows, errors) = mass::read_rows(text.as_bytes(), &n).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let users: Vec<&str> = rows.iter().map(|r| r.seat.user.as_str()).collect();
    assert_eq!(users, ["Smith, Anna", "O\"Brien", "bob"]);
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4, 5]);
}

#[test]
fn an_unassigned_seat_with_the_row_number_is_given_to_the_row_user() {
    let mut db = SeatDb::in_memory().unwrap();
    let l = limits();
    import(
        &mut db,
        &l,
        "extension_key,number,user,addon_1\nPhone System,1001,alice,call_recording\n",
    )
    .unwrap();
    let alice = db.load().unwrap()[0].clone();
    db.change(|p| p.unassign(alice.id), None).unwrap();
    let out = import(
        &mut db,
        &l,
        "extension_key,number,user,addon_1\nPhone System,1001,bob,call_recording\n",
    )
    .unwrap();
    assert_eq!((out.created, out.changed), (0, 1));
    let bob = db.load().unwrap()[0].clone();
    assert_eq!((bob.id, bob.user.as_deref()), (alice.id, Some("bob")));
}

#[test]
fn import_of_10000_rows() {
    let mut text = String::from("extension_key,number,user,addon_1,addon_2\n");
    for n in 0..10_000 {
        let addons = match n % 3 {
            0 => "call_recording,device_ip_phone",
            1 => "device_ip_phone,",
            _ => ",",
        };
        text.push_str(&format!(
            "Phone System,{},user{n}@example.com,{addons}\n",
            10_000 + n
        ));
    }
    let l = Limits::new().base(4, 10_000, &[(1, 4000), (4, 7000)]);
    let dir = tempfile::tempdir().unwrap();
    let mut db = SeatDb::open(&folder(dir.path()), None).unwrap();
    let started = std::time::Instant::now();
    let out = import(&mut db, &l, &text).unwrap();
    eprintln!(
        "10,000 rows imported in {:?} (test profile)",
        started.elapsed()
    );
    assert_eq!(out.created, 10_000);
    let counts = db.counts().unwrap();
    assert_eq!(counts.get(Key::Base(4)), 10_000);
    assert_eq!(counts.get(Key::Addon { base: 4, addon: 1 }), 3334);
    assert_eq!(counts.get(Key::Addon { base: 4, addon: 4 }), 6667);
    let again = import(&mut db, &l, &text).unwrap();
    assert_eq!(again.unchanged, 10_000);
    // One more row than licensed: refused, nothing written.
    let e = import(&mut db, &l, &format!("{text}Phone System,99999,one-more\n")).unwrap_err();
    assert!(
        e.to_string()
            .contains("line 10002: Phone System: 10000 licensed, 10000 assigned"),
        "{e}"
    );
    assert_eq!(db.load().unwrap().len(), 10_000);
}

// ---------------------------------------------------------------- property

mod properties {
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Assign {
            user: u8,
            license: u8,
            ext: Option<u8>,
            addons: Vec<u8>,
        },
        Unassign(u8),
        Reassign(u8, u8),
        Terminate(u8),
        Addons(u8, Vec<u8>, Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..12, 0u8..4, proptest::option::of(0u8..8), proptest::collection::vec(0u8..4, 0..3))
                .prop_map(|(user, license, ext, addons)| Op::Assign { user, license, ext, addons }),
            2 => any::<u8>().prop_map(Op::Unassign),
            2 => (any::<u8>(), 0u8..12).prop_map(|(s, u)| Op::Reassign(s, u)),
            1 => any::<u8>().prop_map(Op::Terminate),
            2 => (any::<u8>(), proptest::collection::vec(0u8..4, 0..2), proptest::collection::vec(0u8..4, 0..2))
                .prop_map(|(s, a, r)| Op::Addons(s, a, r)),
        ]
    }

    const LICENSES: [SeatLicense; 4] = [
        SeatLicense::Profile(1),
        SeatLicense::Profile(3),
        SeatLicense::Base(4),
        SeatLicense::Base(2),
    ];

    fn small_limits() -> Limits {
        Limits::new()
            .profile(1, 2)
            .profile(3, 2)
            .base(4, 3, &[(1, 2), (4, 3), (5, 0)])
            .base(2, 2, &[(2, 1)])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// After any sequence of assign / unassign / reassign / terminate /
        /// add-on changes (each in its own transaction, refused or not),
        /// the summary equals a recount of the store, and no count is
        /// above its licensed number.
        #[test]
        fn summary_equals_a_recount_of_the_store(ops in proptest::collection::vec(op(), 1..60)) {
            let l = small_limits();
            let n = names();
            let mut db = SeatDb::in_memory().unwrap();
            for (i, op) in ops.into_iter().enumerate() {
                let now = T0 + i64::try_from(i).unwrap();
                let pick = |p: &Pool, k: u8| -> Option<SeatId> {
                    let ids: Vec<SeatId> = p.seats().map(|s| s.id).collect();
                    (!ids.is_empty()).then(|| ids[usize::from(k) % ids.len()])
                };
                let _ = db.change(|p| {
                    match &op {
                        Op::Assign { user, license, ext, addons } => {
                            let new = NewSeat {
                                user: format!("user{user}"),
                                extension: ext.map(|e| format!("{}", 100 + u16::from(e))),
                                license: LICENSES[usize::from(*license)],
                                // Mostly valid add-ons: on base licenses only.
                                addons: if *license >= 2 || addons.len() == 2 {
                                    addons.iter().map(|&a| u16::from(a) + 1).collect()
                                } else {
                                    Vec::new()
                                },
                            };
                            p.assign(&l, new, SeatId::random()?, now, &n).map(|_| ())
                        }
                        Op::Unassign(k) => match pick(p, *k) {
                            Some(id) => p.unassign(id).map(|_| ()),
                            None => Ok(()),
                        },
                        Op::Reassign(k, u) => match pick(p, *k) {
                            Some(id) => p.reassign(&l, id, &format!("user{u}"), now, &n).map(|_| ()),
                            None => Ok(()),
                        },
                        Op::Terminate(k) => match pick(p, *k) {
                            Some(id) => p.terminate(id).map(|_| ()),
                            None => Ok(()),
                        },
                        Op::Addons(k, add, remove) => match pick(p, *k) {
                            Some(id) => {
                                let add: Vec<u16> = add.iter().map(|&a| u16::from(a) + 1).collect();
                                let remove: Vec<u16> = remove.iter().map(|&a| u16::from(a) + 1).collect();
                                p.set_addons(&l, id, &add, &remove, &n).map(|_| ())
                            }
                            None => Ok(()),
                        },
                    }
                }, None);
                let seats = db.load().unwrap();
                let recount = Counts::recount(&seats);
                let summary = Summary::new(&l, &db.counts().unwrap(), db.unassigned().unwrap(), &n);
                for e in &summary.entries {
                    let key = match (e.kind, e.base) {
                        ("profile", _) => Key::Profile(e.code),
                        ("base", _) => Key::Base(e.code),
                        (_, Some(base)) => Key::Addon { base, addon: e.code },
                        _ => unreachable!(),
                    };
                    prop_assert_eq!(e.assigned, recount.get(key), "{:?}", key);
                    prop_assert_eq!(e.licensed, l.licensed(key));
                    prop_assert_eq!(e.over, 0, "{:?} over the limit", key);
                }
                for (key, count) in recount.iter() {
                    prop_assert!(summary.entries.iter().any(|e| e.assigned == count && match key {
                        Key::Profile(c) => e.kind == "profile" && e.code == c,
                        Key::Base(c) => e.kind == "base" && e.code == c,
                        Key::Addon { base, addon } => e.base == Some(base) && e.code == addon,
                    }), "{:?} missing from the summary", key);
                }
                let unassigned = seats.iter().filter(|s| s.user.is_none()).count() as u64;
                prop_assert_eq!(summary.unassigned_seats, unassigned);
                let pool = db.pool().unwrap();
                prop_assert_eq!(pool.counts(), &recount);
            }
        }

        /// What an export writes into a cell, an import reads back as it was.
        #[test]
        fn neutralize_is_reversed_by_restore(cell in "['=+\\-@ \\t\\r\u{3000}\u{ff1d}\u{ff0b}a]{0,6}\\PC{0,4}") {
            let written = mass::neutralize(&cell);
            prop_assert_eq!(mass::restore(&written), cell.as_str());
        }

        /// No CSV text makes the reader panic.
        #[test]
        fn arbitrary_csv_never_panics(text in "\\PC{0,300}") {
            let _ = mass::read_rows(text.as_bytes(), &names());
            let _ = mass::read_rows(format!("extension_key,number,user,addon_1\n{text}").as_bytes(), &names());
        }
    }
}

// ---------------------------------------------------------------- agent

/// A PBX with the agent and a state directory.
struct Site {
    tree: Tree,
    state: tempfile::TempDir,
    agent: Agent,
}

impl Site {
    fn new() -> Self {
        let tree = Tree::appliance();
        let state = tempfile::tempdir().unwrap();
        write_keyring(state.path());
        let mut o = AgentOptions::new(state.path());
        o.sysroot = Some(tree.root().to_owned());
        let agent = Agent::new(o).unwrap();
        Self { tree, state, agent }
    }

    /// Installs the issuer's answer to a fresh request, changed by `tweak`.
    fn install(&self, sequence: u32, at: i64, tweak: impl FnOnce(&mut LicenseData)) {
        let req = self.agent.request(at).unwrap();
        let mut buf = [0u8; MAX_OBJECT_LEN];
        let bytes = armor::decode(&req.armored, armor::LABEL_REQUEST, &mut buf).unwrap();
        let mut l = answer(bytes, sequence, at);
        tweak(&mut l);
        self.agent.install(&sign(&l), at, false).unwrap();
    }

    fn seats(&self, at: i64) -> super::Seats<'_> {
        self.agent.seats(at, SeatOptions::default()).unwrap()
    }
}

fn phone(user: &str, ext: &str) -> NewSeat {
    seat(user, PHONE, Some(ext), &[])
}

#[test]
fn seats_follow_the_installed_license() {
    let s = Site::new();
    // No state yet: the seats cannot even be opened (nothing is created).
    let e = s.agent.seats(T0, SeatOptions::default()).unwrap_err();
    assert_eq!(e.code(), "not_activated");
    assert!(e.to_string().contains("no license is installed"), "{e}");
    // Provisioned, no license yet: no new assignments.
    s.agent.request(T0).unwrap();
    {
        let mut seats = s.seats(T0);
        let e = seats.assign(phone("alice", "1001")).unwrap_err();
        assert_eq!(e.code(), "no_service");
        assert!(e.to_string().contains("no license is installed"), "{e}");
        assert!(seats.summary().unwrap().entries.is_empty());
    }
    s.install(1, T0, |_| {});
    let mut seats = s.seats(T0 + DAY);
    let a = seats.assign(phone("alice", "1001")).unwrap();
    assert_eq!(a.license.name, "Phone System");
    seats
        .assign(seat("bob", CALL_GROUP, Some("2001"), &[2]))
        .unwrap();
    // Search by extension: Phone System seats only.
    let found = seats
        .list(&Filter {
            extension: Some("1001".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(seats
        .list(&Filter {
            extension: Some("2001".into()),
            ..Filter::default()
        })
        .unwrap()
        .is_empty());
    let e = seats
        .list(&Filter {
            extension: Some("2001".into()),
            license: Some(CALL_GROUP),
            ..Filter::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), "extension_search");
    assert_eq!(
        e.to_string(),
        "search by extension covers the Phone System base license (code 4) only, not Call Group; search Call Group by --user instead"
    );
    assert_eq!(
        seats
            .list(&Filter {
                user: Some("bob".into()),
                ..Filter::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        seats
            .list(&Filter {
                license: Some(PHONE),
                ..Filter::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        seats
            .list(&Filter {
                addon: Some(2),
                ..Filter::default()
            })
            .unwrap()
            .len(),
        1
    );
    let summary = seats.summary().unwrap();
    assert_eq!(summary.source.serial.as_deref(), Some("SW-2026-000123"));
    let phone_line = summary
        .entries
        .iter()
        .find(|e| e.kind == "base" && e.code == 4)
        .unwrap();
    assert_eq!(
        (
            phone_line.licensed,
            phone_line.assigned,
            phone_line.available
        ),
        (52, 1, 51)
    );
    drop(seats);
    // After grace (14 days, then emergency only): no new assignments.
    let late = T0 + 400 * DAY;
    let mut seats = s.seats(late);
    let e = seats.assign(phone("carol", "1003")).unwrap_err();
    assert_eq!(e.code(), "no_service");
    assert!(e.to_string().contains("emergency_only"), "{e}");
    seats.unassign(&a.uuid.to_string()).unwrap();
    seats.terminate(&a.uuid.to_string()).unwrap();
    assert!(!seats.summary().unwrap().may_assign);
}

#[test]
fn a_decreased_license_shows_in_check_and_status() {
    let s = Site::new();
    s.install(1, T0, |_| {});
    {
        let mut seats = s.seats(T0 + DAY);
        for n in 0..10 {
            seats
                .assign(seat(&format!("u{n}"), UC_BUSINESS, None, &[]))
                .unwrap();
        }
    }
    assert!(s.agent.check(T0 + DAY).unwrap().over_assigned.is_empty());
    s.install(2, T0 + 2 * DAY, |l| l.entitlements.profiles[2].count = 8);
    let r = s.agent.check(T0 + 3 * DAY).unwrap();
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.over_assigned.len(), 1);
    assert_eq!(r.over_assigned[0].over, 2);
    assert!(
        r.summary()
            .contains("over-assigned: UC-BUSINESS: 8 licensed, 10 assigned, 2 over the limit"),
        "{}",
        r.summary()
    );
    let st = s.agent.status(T0 + 3 * DAY).unwrap();
    assert!(
        st.render().contains("over-assigned:\n  UC-BUSINESS"),
        "{}",
        st.render()
    );
    let mut seats = s.seats(T0 + 3 * DAY);
    assert_eq!(
        seats
            .list(&Filter {
                over: true,
                ..Filter::default()
            })
            .unwrap()
            .len(),
        2
    );
    assert_eq!(seats.db().load().unwrap().len(), 10);
    assert_eq!(
        seats
            .assign(seat("new", UC_BUSINESS, None, &[]))
            .unwrap_err()
            .code(),
        "seat_limit"
    );
}

#[test]
fn a_sharing_client_counts_against_its_servers_license() {
    let s = Site::new();
    let client = |l: &mut LicenseData| {
        l.serial = "SW-2026-000124".into();
        l.entitlements = Default::default();
        l.services = Vec::new();
        l.sharing = SharingData::Client("SW-2026-000123".into());
    };
    s.install(1, T0, client);
    {
        let mut seats = s.seats(T0 + DAY);
        let e = seats
            .assign(phone("alice", "1001"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sharing client of SW-2026-000123"), "{e}");
        assert!(e.contains("--server-license FILE"), "{e}");
    }
    let write = |name: &str, l: &LicenseData| {
        let p = s.tree.root().join(name);
        std::fs::write(&p, armor::encode(&sign(l), armor::LABEL_LICENSE)).unwrap();
        p
    };
    let mut server = samples::typical();
    server.sharing = SharingData::Server;
    server.sequence = 5;
    server.entitlements.bases[0].count = 1;
    let good = write("server.txt", &server);
    let mut other = server.clone();
    other.serial = "SW-2026-999999".into();
    let wrong_serial = write("other.txt", &other);
    let mut standalone = server.clone();
    standalone.sharing = SharingData::None;
    let not_server = write("standalone.txt", &standalone);
    let mut old = server.clone();
    old.sequence = 4;
    old.entitlements.bases[0].count = 50;
    let older = write("older.txt", &old);
    let open = |path: &std::path::Path| {
        s.agent
            .seats(
                T0 + DAY,
                SeatOptions {
                    server_license: Some(path.to_owned()),
                    hook: None,
                },
            )
            .unwrap()
    };
    for (path, want) in [
        (&wrong_serial, "is the license of SW-2026-999999"),
        (&not_server, "is not a sharing server's license"),
    ] {
        let e = open(path)
            .assign(phone("alice", "1001"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
    {
        let mut seats = open(&good);
        seats.assign(phone("alice", "1001")).unwrap();
        assert_eq!(
            seats.assign(phone("bob", "1002")).unwrap_err().code(),
            "seat_limit"
        );
        let summary = seats.summary().unwrap();
        assert_eq!(summary.source.kind, "server");
        assert_eq!(summary.source.sequence, Some(5));
    }
    // An older server license (more seats) after the newer one: refused.
    let e = open(&older)
        .assign(phone("bob", "1002"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("older than sequence 5"), "{e}");
    // A standalone PBX refuses --server-license.
    let alone = Site::new();
    alone.install(1, T0, |_| {});
    let e = alone
        .agent
        .seats(
            T0,
            SeatOptions {
                server_license: Some(good.clone()),
                hook: None,
            },
        )
        .unwrap()
        .limits()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(e, AgentError::Seats(SeatError::NotAClient(_))),
        "{e}"
    );
    let _ = s.state.path();
}

#[test]
fn import_through_the_agent_and_a_dry_run() {
    let s = Site::new();
    s.install(1, T0, |_| {});
    let mut seats = s.seats(T0 + DAY);
    let mut stages = Vec::new();
    let out = seats
        .import(Cursor::new(MASS), true, &mut |st, d, t| {
            stages.push((st, d, t))
        })
        .unwrap();
    assert_eq!(out.created, 4);
    assert!(
        seats.db().load().unwrap().is_empty(),
        "a dry run writes nothing"
    );
    assert_eq!(stages.last(), Some(&(Stage::Checking, 4, 4)));
    stages.clear();
    seats
        .import(Cursor::new(MASS), false, &mut |st, d, t| {
            stages.push((st, d, t))
        })
        .unwrap();
    assert_eq!(seats.db().load().unwrap().len(), 4);
    assert_eq!(stages.last(), Some(&(Stage::Writing, 4, 4)));
    let mut out = Vec::new();
    assert_eq!(seats.export(&mut out).unwrap(), 4);
}
