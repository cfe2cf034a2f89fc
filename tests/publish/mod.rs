//! Publishing: OSD and manifest round trips, the Sequencer-style samples in
//! fixtures/osd/, every ApplicationSourceRoot rewrite documented in
//! appv4.md §5.1, hostile XML, icons, and the CLI.
#![cfg(feature = "publish")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sft::ErrorKind;
use sft::publish::{
    Limits, Manifest, Node, Osd, ScriptBody, ScriptEvent, SourceRoots, Timing, apply_source_root,
    resolve_codebase, tiny_icon, validate_icon,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/osd/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn sequencer_sample_parses_every_element() {
    let osd = Osd::parse(&fixture("mmc-console.osd")).unwrap();
    assert_eq!(osd.name.as_deref(), Some("Microsoft Management Console"));
    assert_eq!(osd.version.as_deref(), Some("6.1"));
    let cb = osd.codebase().unwrap();
    assert_eq!(
        cb.href.as_deref(),
        Some("RTSP://%SFT_SOFTGRIDSERVER%:554/MMC/mmc.sft?customer=seq")
    );
    assert_eq!(
        cb.parameters.as_deref(),
        Some("/s \"%CSIDL_SYSTEM%\\compmgmt.msc\"")
    );
    assert_eq!(cb.size, Some(6_572_748));
    assert_eq!(cb.sysguardfile.as_deref(), Some("MMC.1\\osguard.cp"));
    assert_eq!(
        cb.package_guid().unwrap().unwrap().to_string(),
        "6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11"
    );
    let imp = osd.implementation.as_ref().unwrap();
    let venv = imp.virtual_env.as_ref().unwrap();
    assert_eq!(venv.terminate_children, Some(false));
    assert_eq!(venv.policy("LOCAL_INTERACTION_ALLOWED"), Some(false));
    assert_eq!(venv.policy("VIRTUAL_FILE_SYSTEM_PASS_THROUGH"), Some(true));
    let env = &venv.env.as_ref().unwrap().items;
    assert_eq!(env[0].variable.as_deref(), Some("PATH"));
    assert_eq!(env[0].value, "%SFT_MNT%\\MMC.1\\bin;%PATH%");
    assert_eq!(env[1].value, "");
    let deps = &venv.dependencies.as_ref().unwrap().items;
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].mandatory, Some(true));
    assert_eq!(deps[0].size, Some(48_213_504));
    assert_eq!(imp.working_dir.as_ref().unwrap().value, "%CSIDL_SYSTEM%");
    let vm = imp.vm.as_ref().unwrap();
    assert_eq!(vm.value.as_deref(), Some("Win32"));
    assert_eq!(
        vm.subsystem.as_ref().unwrap().value.as_deref(),
        Some("windowed")
    );
    let os: Vec<_> = imp.os.iter().map(|o| o.value.clone().unwrap()).collect();
    assert_eq!(os, ["WinXP", "Win7", "Win764"]);
    let dep = osd.dependency.as_ref().unwrap();
    assert_eq!(dep.client_version.as_deref(), Some("4.6.0.0"));
    let pre = &dep.scripts[0];
    assert_eq!(pre.timing, Some(Timing::Pre));
    assert_eq!(pre.event, Some(ScriptEvent::Launch));
    assert_eq!(
        (pre.protect, pre.wait, pre.timeout),
        (Some(true), Some(true), Some(30))
    );
    assert_eq!((pre.success_result, pre.abort_result), (Some(0), Some(1)));
    let Some(ScriptBody::Inline(body)) = &pre.body else {
        panic!("inline body expected")
    };
    assert!(body.value.starts_with("if not exist \\\\\\\\server"));
    assert_eq!(body.extra.attributes[0].name, "LANGUAGE");
    let post = &dep.scripts[1];
    assert_eq!(post.event, Some(ScriptEvent::Shutdown));
    assert!(
        matches!(&post.body, Some(ScriptBody::Href(h)) if h.value == "\\\\server\\scripts\\cleanup.cmd")
    );
    assert_eq!(osd.package.as_ref().unwrap().name.as_deref(), Some("MMC"));
    assert_eq!(osd.title.as_ref().unwrap().value, "Computer Management");
    let sc = &osd.shortcuts.as_ref().unwrap().items[0];
    assert_eq!(sc.overridden, Some(false));
    assert_eq!(
        sc.icon.as_deref(),
        Some("%SFT_MIME_SOURCE%/MMC Icons/mmc.exe.ico")
    );
    let fa = osd.file_associations.as_ref().unwrap();
    assert_eq!(fa.elements().count(), 2);
    // The unknown element is kept with its attribute and text.
    let Node::Element(unknown) = &osd.extra.children[0] else {
        panic!("unknown element expected")
    };
    assert_eq!(unknown.name, "MGMT_VENDOR_NOTES");
    assert_eq!(unknown.attribute("OWNER"), Some("packaging"));
}

#[test]
fn round_trips_keep_everything() {
    for name in ["mmc-console.osd", "minimal-empty.osd", "utf16le-bom.osd"] {
        let osd = Osd::parse(&fixture(name)).unwrap();
        let xml = osd.to_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\" standalone=\"no\"?>"));
        let back = Osd::parse(xml.as_bytes()).unwrap();
        assert_eq!(back, osd, "{name}");
        assert_eq!(back.to_xml(), xml, "{name}: writing is stable");
    }
    let xml = Osd::parse(&fixture("mmc-console.osd")).unwrap().to_xml();
    assert!(xml.contains("PARAMETERS=\"/s &quot;%CSIDL_SYSTEM%\\compmgmt.msc&quot;\""));
    assert!(xml.contains("<MGMT_VENDOR_NOTES OWNER=\"packaging\">Not in Softricity.xsd: kept as is.</MGMT_VENDOR_NOTES>"));
    assert!(xml.contains("<SCRIPTBODY LANGUAGE=\"Batch\">"));
}

#[test]
fn empty_elements_and_utf16() {
    let osd = Osd::parse(&fixture("minimal-empty.osd")).unwrap();
    let venv = osd
        .implementation
        .as_ref()
        .unwrap()
        .virtual_env
        .as_ref()
        .unwrap();
    assert!(venv.policies.as_ref().unwrap().items.is_empty());
    assert!(venv.env.as_ref().unwrap().items.is_empty());
    assert_eq!(osd.codebase().unwrap().parameters.as_deref(), Some(""));
    assert_eq!(
        osd.implementation
            .as_ref()
            .unwrap()
            .working_dir
            .as_ref()
            .unwrap()
            .value,
        ""
    );
    assert_eq!(osd.title.as_ref().unwrap().value, "");
    let u = Osd::parse(&fixture("utf16le-bom.osd")).unwrap();
    assert_eq!(u.name.as_deref(), Some("Wörterbuch"));
    assert_eq!(u.codebase().unwrap().size, Some(1024));
}

#[test]
fn typed_value_errors_name_the_position() {
    let e = Osd::parse(b"<SOFTPKG>\n <IMPLEMENTATION>\n  <CODEBASE SIZE=\"12kb\"/>\n </IMPLEMENTATION>\n</SOFTPKG>")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("line 3, column 3"), "{e}");
    assert!(e.to_string().contains("SIZE"), "{e}");
    let e = Osd::parse(b"<SOFTPKG><DEPENDENCY><SCRIPT WAIT=\"maybe\"/></DEPENDENCY></SOFTPKG>")
        .unwrap_err();
    assert!(e.to_string().contains("TRUE or FALSE"), "{e}");
    let e = Osd::parse(b"<MANIFEST/>").unwrap_err();
    assert!(e.to_string().contains("not an OSD"), "{e}");
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let cases: &[(&[u8], &str)] = &[
        (b"<SOFTPKG>\n  <IMPLEMENTATION>\n</SOFTPKG>", "line 3"),
        (b"<SOFTPKG NAME=\"a></SOFTPKG>", "line 1"),
        (b"<SOFTPKG>\n\n<A B=1/></SOFTPKG>", "line 3"),
        (b"<SOFTPKG>", "end of input"),
        (b"\xff\xfe\x00", "UTF-16"),
        (b"<SOFTPKG NAME=\"\xc3\x28\"/>", "not UTF-8"),
        // Found by the osd fuzz target: these wrote back as invalid XML.
        (
            b"<SOFTPKG>\n<\r\r/></SOFTPKG>",
            "line 2, column 1: `` is not an element name",
        ),
        (
            b"<SOFTPKG>\n <CODEBASE GUID=\"a\" GUId=\"b\"/></SOFTPKG>",
            "CODEBASE at line 2, column 2: attribute `GUId` is given twice",
        ),
    ];
    for (input, want) in cases {
        let e = Osd::parse(input).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
}

#[test]
fn hostile_xml_is_refused_with_bounded_memory() {
    // Billion laughs: no DTD is processed at all.
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<SOFTPKG NAME="&lol2;"/>"#;
    let e = Osd::parse(laughs).unwrap_err();
    assert!(
        e.to_string()
            .contains("document type declarations are not allowed"),
        "{e}"
    );
    // An entity used without a DTD is not expanded either.
    let e = Osd::parse(b"<SOFTPKG NAME=\"&xxe;\"/>").unwrap_err();
    assert!(e.to_string().contains("xxe"), "{e}");
    let e = Osd::parse(b"<SOFTPKG><TITLE>&xxe;</TITLE></SOFTPKG>").unwrap_err();
    assert!(e.to_string().contains("unknown entity"), "{e}");
    // Deep nesting.
    let deep = format!(
        "<SOFTPKG>{}{}</SOFTPKG>",
        "<X>".repeat(100_000),
        "</X>".repeat(100_000)
    );
    let e = Osd::parse(deep.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("nested deeper than 64"), "{e}");
    // A huge attribute.
    let huge = format!("<SOFTPKG NAME=\"{}\"/>", "A".repeat(1 << 20));
    let e = Osd::parse(huge.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("longer than 65536 bytes"), "{e}");
    // Huge text.
    let text = format!("<SOFTPKG><TITLE>{}</TITLE></SOFTPKG>", "t".repeat(2 << 20));
    let e = Osd::parse(text.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("text longer than"), "{e}");
    // Too many attributes and too many elements.
    let attrs: String = (0..1000).map(|i| format!(" A{i}=\"\"")).collect();
    let e = Osd::parse(format!("<SOFTPKG{attrs}/>").as_bytes()).unwrap_err();
    assert!(e.to_string().contains("more than 256 attributes"), "{e}");
    let many = format!("<SOFTPKG>{}</SOFTPKG>", "<X/>".repeat(300_000));
    let e = Osd::parse_with(
        many.as_bytes(),
        &Limits {
            max_input: 2 << 20,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than 200000 nodes"), "{e}");
    // Total size, checked before anything is parsed.
    let big = vec![b' '; (4 << 20) + 1];
    let e = Osd::parse(&big).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
}

#[test]
fn manifest_attributes_differing_in_case_are_refused() {
    let e =
        Manifest::parse(b"<MANIFEST><APPLIST><APP NAME=\"a\" name=\"b\"/></APPLIST></MANIFEST>")
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("attribute `name` is given twice"),
        "{e}"
    );
}

#[test]
fn manifest_round_trip_keeps_unknowns() {
    let src = br#"<?xml version="1.0" encoding="UTF-8"?>
<MANIFEST X-GENERATOR="hand">
  <PACKAGE NAME="Office" GUID="6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11" VERSIONGUID="0B5E6F4A-1C2D-4E3F-8A9B-7C6D5E4F3A2B" VERSION="3" HREF="rtsp://server/office.sft" SIZE="123"/>
  <APPLIST>
    <APP NAME="Word" VERSION="11" OSD="%SFT_MIME_SOURCE%/Word.osd" ICON="%SFT_MIME_SOURCE%/Office Icons/word.ico">
      <SHORTCUTLIST>
        <SHORTCUT LOCATION="%CSIDL_DESKTOPDIRECTORY%" FILENAME="Word" DISPLAY="Word" ICON="%SFT_MIME_SOURCE%/Office Icons/word.ico" OVERRIDDEN="TRUE"/>
      </SHORTCUTLIST>
      <FILETYPELIST>
        <FILETYPE EXTENSION="doc" PROGID="Word.Document.8" DESCRIPTION="Word document" CONTENTTYPE="application/msword" ICON="%SFT_MIME_SOURCE%/Office Icons/doc.ico"/>
      </FILETYPELIST>
      <DDE SERVICE="WinWord"/>
    </APP>
  </APPLIST>
</MANIFEST>"#;
    let m = Manifest::parse(src).unwrap();
    let p = m.package.as_ref().unwrap();
    assert_eq!(p.size, Some(123));
    assert_eq!(
        p.version_guid.as_deref(),
        Some("0B5E6F4A-1C2D-4E3F-8A9B-7C6D5E4F3A2B")
    );
    let app = &m.apps.items[0];
    assert_eq!(
        app.shortcuts.as_ref().unwrap().items[0].overridden,
        Some(true)
    );
    let ft = &app.file_types.as_ref().unwrap().items[0];
    assert_eq!(ft.content_type.as_deref(), Some("application/msword"));
    assert_eq!(m.extra.attributes[0].name, "X-GENERATOR");
    let xml = m.to_xml();
    assert!(xml.contains("<DDE SERVICE=\"WinWord\"/>"));
    assert_eq!(Manifest::parse(xml.as_bytes()).unwrap(), m);
}

/// Every rewrite example of appv4.md §5.1, in the order the document gives
/// them.
#[test]
fn application_source_root_vectors() {
    let cases = [
        // URL root: protocol://server:port replaced, root path prepended, query kept.
        (
            "rtsps://mainserver:322/prodapps",
            "rtsp://appserver/productivity/office2k3.sft?customer=seq",
            "rtsps://mainserver:322/prodapps/productivity/office2k3.sft?customer=seq",
        ),
        // URL root + UNC HREF: `\` becomes `/`.
        (
            "rtsps://mainserver:322/prodapps",
            "\\\\uncserver\\share\\productivity\\office2k3.sft",
            "rtsps://mainserver:322/prodapps/productivity/office2k3.sft",
        ),
        (
            "http://webserver/content",
            "file://\\\\uncserver\\share\\productivity\\office2k3.sft",
            "http://webserver/content/productivity/office2k3.sft",
        ),
        // UNC root + rtsp HREF: `/` becomes `\`, the query is dropped.
        (
            "\\\\uncserver\\share",
            "rtsp://appserver/productivity/office2k3.sft?customer=seq",
            "\\\\uncserver\\share\\productivity\\office2k3.sft",
        ),
        // Drive root + UNC HREF.
        (
            "M:",
            "\\\\uncserver\\share\\productivity\\office2k3.sft",
            "M:\\productivity\\office2k3.sft",
        ),
        // A variable host with a port is replaced too.
        (
            "rtsps://mainserver:322",
            "rtsp://%SFT_APPVSERVER%:554/productivity/office2k3.sft",
            "rtsps://mainserver:322/productivity/office2k3.sft",
        ),
        // §2.3's import example, as a UNC root.
        (
            "\\\\server\\content",
            "https://WebServer/myFolder/package.sft",
            "\\\\server\\content\\myFolder\\package.sft",
        ),
        // Root parsing: whitespace stripped, trailing separator optional.
        (
            "  rtsps://mainserver:322/prodapps/  ",
            "rtsp://appserver/productivity/office2k3.sft",
            "rtsps://mainserver:322/prodapps/productivity/office2k3.sft",
        ),
        (
            "\\\\uncserver\\share\\apps\\",
            "RTSP://%SFT_SOFTGRIDSERVER%:554/office2k3.sft",
            "\\\\uncserver\\share\\apps\\office2k3.sft",
        ),
    ];
    for (root, href, want) in cases {
        assert_eq!(
            apply_source_root(href, root).unwrap(),
            want,
            "{root} + {href}"
        );
    }
}

#[test]
fn application_source_root_refusals() {
    for (root, why) in [
        ("rtsp://user:pw@server/", "user:password"),
        ("http://server/apps?x=1", "query"),
        ("rtsp://%SFT_SOFTGRIDSERVER%/", "environment variables"),
        ("\\\\computer", "not a valid root"),
        ("apps/", "protocol and server"),
    ] {
        let e = apply_source_root("rtsp://s/a.sft", root).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(why), "{root}: {e}");
    }
}

#[test]
fn codebase_precedence_and_sources() {
    let env = |n: &str| match n {
        "SFT_SOFTGRIDSERVER" => Some("apps.example.com".to_owned()),
        "CONTENT" => Some("/srv/content".to_owned()),
        _ => None,
    };
    let href = "RTSP://%SFT_SOFTGRIDSERVER%:554/Office/office.sft?customer=seq";
    let none = SourceRoots::default();
    assert_eq!(
        resolve_codebase(href, &none, env).unwrap(),
        "rtsp://apps.example.com:554/Office/office.sft?customer=seq"
    );
    let asr = SourceRoots {
        application_source_root: Some("https://cdn.example.com/apps".into()),
        ..SourceRoots::default()
    };
    assert_eq!(
        resolve_codebase(href, &asr, env).unwrap(),
        "https://cdn.example.com/apps/Office/office.sft?customer=seq"
    );
    // OverrideURL beats ApplicationSourceRoot; SFTPATH beats both.
    let over = SourceRoots {
        override_url: Some("file://\\\\fs\\share\\office v2.sft".into()),
        ..asr.clone()
    };
    assert_eq!(
        resolve_codebase(href, &over, env).unwrap(),
        "smb://fs/share/office%20v2.sft"
    );
    let sftpath = SourceRoots {
        sftpath: Some("%CONTENT%/office.sft".into()),
        ..over
    };
    assert_eq!(
        resolve_codebase(href, &sftpath, env).unwrap(),
        "/srv/content/office.sft"
    );
    // With a UNC root the HREF's host variable need not be set.
    let unc = SourceRoots {
        application_source_root: Some("\\\\fs\\content".into()),
        ..SourceRoots::default()
    };
    assert_eq!(
        resolve_codebase("rtsp://%UNSET%:554/a/b.sft?q", &unc, |_| None).unwrap(),
        "smb://fs/content/a/b.sft"
    );
    // Every HREF form.
    for (h, want) in [
        ("rtsps://s:322/a.sft", "rtsps://s:322/a.sft"),
        ("http://s/My Apps/a.sft", "http://s/My%20Apps/a.sft"),
        (
            "https://s/a.sft?X-Amz-Signature=ab%2Fc",
            "https://s/a.sft?X-Amz-Signature=ab%2Fc",
        ),
        ("file:///srv/a.sft", "file:///srv/a.sft"),
        ("file://\\\\s\\share\\a.sft", "smb://s/share/a.sft"),
        ("\\\\s\\share\\dir\\a.sft", "smb://s/share/dir/a.sft"),
        ("M:\\dir\\a.sft", "M:\\dir\\a.sft"),
        ("/srv/a.sft", "/srv/a.sft"),
    ] {
        assert_eq!(resolve_codebase(h, &none, env).unwrap(), want, "{h}");
    }
    let e = resolve_codebase("rtsp://%MISSING%/a.sft", &none, env).unwrap_err();
    assert!(e.to_string().contains("%MISSING%"), "{e}");
    assert!(resolve_codebase("ftp://s/a.sft", &none, env).is_err());
    assert!(resolve_codebase("  ", &none, env).is_err());
}

#[test]
fn icons_are_checked() {
    let good = tiny_icon();
    assert_eq!(validate_icon(&good).unwrap().sizes, [(16, 16)]);
    assert!(validate_icon(b"").is_err());
    assert!(validate_icon(&good[..good.len() - 10]).is_err());
    let mut png_lie = good.clone();
    png_lie[4] = 0; // zero images
    assert!(validate_icon(&png_lie).is_err());
}

#[test]
fn fuzz_entry_point_accepts_samples() {
    for name in ["mmc-console.osd", "minimal-empty.osd", "utf16le-bom.osd"] {
        sft::fuzzing::osd(&fixture(name));
    }
    sft::fuzzing::osd(b"<MANIFEST><APPLIST><APP NAME='a'/></APPLIST></MANIFEST>");
    sft::fuzzing::osd(b"<SOFTPKG><!-- a -- b --><POLICIES>  <X/></POLICIES></SOFTPKG>");
}

#[cfg(feature = "cli")]
mod cli {
    use std::path::Path;

    use crate::common::cli::{pack_sample, sft};

    fn fixture(name: &str) -> String {
        format!("{}/fixtures/osd/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn osd_show_text_and_json() {
        let out = sft(&["osd", "show", &fixture("mmc-console.osd")]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("name:           Microsoft Management Console"),
            "{text}"
        );
        assert!(text.contains("size:           6572748"), "{text}");
        assert!(
            text.contains("os:             WinXP, Win7, Win764"),
            "{text}"
        );
        assert!(
            text.contains("script:         PRE LAUNCH, protected, wait, timeout 30 s"),
            "{text}"
        );
        assert!(text.contains("unknown:        MGMT_VENDOR_NOTES"), "{text}");

        let out = sft(&["osd", "show", "--json", &fixture("mmc-console.osd")]);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["codebase"]["size"], 6_572_748);
        assert_eq!(
            v["codebase"]["parameters"],
            "/s \"%CSIDL_SYSTEM%\\compmgmt.msc\""
        );
        assert_eq!(v["policies"]["LOCAL_INTERACTION_ALLOWED"], "FALSE");
        assert_eq!(v["dependencies"][0]["mandatory"], true);
        assert_eq!(v["scripts"][1]["href"], "\\\\server\\scripts\\cleanup.cmd");
        assert_eq!(v["os"][2], "Win764");

        let bad = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(bad.path(), "<SOFTPKG>\n<A>\n</SOFTPKG>").unwrap();
        let out = sft(&["osd", "show", bad.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn pack_publish_then_fetch_osd_and_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let sftp = tmp.path().join("app.sft");
        let publ = tmp.path().join("pub");
        let icon = tmp.path().join("app.ico");
        std::fs::write(&icon, sft::publish::tiny_icon()).unwrap();
        let out = pack_sample(&sftp, &publ, &icon, &["--comment", "A sample"]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("published 2 applications"), "{stdout}");

        let bytes = std::fs::read(&sftp).unwrap();
        let pkg = sft::Package::parse(&bytes).unwrap();
        let guid = pkg.metadata().package_guid().to_string();
        let osd =
            sft::publish::Osd::parse(&std::fs::read(publ.join("Sample App.osd")).unwrap()).unwrap();
        let cb = osd.codebase().unwrap();
        assert_eq!(cb.guid.as_deref(), Some(guid.as_str()));
        assert_eq!(cb.size, Some(bytes.len() as u64));
        assert_eq!(
            cb.filename.as_deref(),
            Some("%SFT_MNT%\\Sample\\bin\\app.exe")
        );
        assert_eq!(osd.abstract_text.as_ref().unwrap().value, "A sample");
        let icon_ref = osd.shortcuts.as_ref().unwrap().items[0]
            .icon
            .clone()
            .unwrap();
        assert_eq!(icon_ref, "%SFT_MIME_SOURCE%/Sample Icons/app.ico");
        let copied = std::fs::read(publ.join("Sample Icons/app.ico")).unwrap();
        assert!(sft::publish::validate_icon(&copied).is_ok());
        let spell =
            sft::publish::Osd::parse(&std::fs::read(publ.join("Spell.osd")).unwrap()).unwrap();
        assert_ne!(spell.guid, osd.guid, "each application has its own GUID");

        let manifest_path = publ.join("Sample_manifest.xml");
        let m = sft::publish::Manifest::parse(&std::fs::read(&manifest_path).unwrap()).unwrap();
        let mp = m.package.as_ref().unwrap();
        assert_eq!(mp.guid.as_deref(), Some(guid.as_str()));
        assert_eq!(
            mp.version_guid.as_deref(),
            Some(pkg.metadata().version_guid().to_string().as_str())
        );
        assert_eq!(m.apps.items.len(), 2);
        assert_eq!(
            m.apps.items[0].osd.as_deref(),
            Some("%SFT_MIME_SOURCE%/Sample App.osd")
        );

        // Fetch through the OSD and through the manifest: the same bytes.
        let got = tmp.path().join("got.sft");
        let out = sft(&[
            "fetch",
            publ.join("Sample App.osd").to_str().unwrap(),
            "-o",
            got.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("source: file://"), "{stdout}");
        assert!(stdout.contains("complete: "), "{stdout}");
        assert_eq!(std::fs::read(&got).unwrap(), bytes);

        // A manifest without PACKAGE HREF goes through its first OSD.
        let mut m2 = m.clone();
        m2.package.as_mut().unwrap().href = None;
        let m2_path = publ.join("nohref.xml");
        std::fs::write(&m2_path, m2.to_xml()).unwrap();
        let got2 = tmp.path().join("got2.sft");
        let out = sft(&[
            "fetch",
            m2_path.to_str().unwrap(),
            "-o",
            got2.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read(&got2).unwrap(), bytes);

        // SFTPATH overrides the HREF.
        let copy = tmp.path().join("copy.sft");
        std::fs::copy(&sftp, &copy).unwrap();
        let got3 = tmp.path().join("got3.sft");
        let out = sft(&[
            "fetch",
            publ.join("Spell.osd").to_str().unwrap(),
            "-o",
            got3.to_str().unwrap(),
            "--sftpath",
            copy.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("source: {}", copy.display()))
        );
        assert_eq!(std::fs::read(&got3).unwrap(), bytes);
    }

    #[test]
    fn fetch_osd_errors_are_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let osd = tmp.path().join("a.osd");
        std::fs::write(
            &osd,
            r#"<SOFTPKG><IMPLEMENTATION><CODEBASE HREF="rtsp://%SFT_TEST_UNSET_VAR%/a.sft"/></IMPLEMENTATION></SOFTPKG>"#,
        )
        .unwrap();
        let out_path = tmp.path().join("o.sft");
        let out = sft(&[
            "fetch",
            osd.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("%SFT_TEST_UNSET_VAR%"), "{err}");
        // Source roots without a descriptor are a usage error.
        let out = sft(&[
            "fetch",
            "x.sft",
            "-o",
            out_path.to_str().unwrap(),
            "--override-url",
            "y",
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(!Path::new(&out_path).exists());
    }
}
