# Parses the lane VM's serial log (see stage2.sh). live=1: one line per test
# as it finishes. live=0: failure details, then "N passed, N failed"; exits 1
# on any failure or when the VM did not finish.
function out(s) { print s; fflush() }
function strip(s) { sub(/\r$/, "", s); return s }
{ $0 = strip($0) }
/^V2LANE-INFO / { if (live) out("v2lane: " substr($0, 13)); next }
/^V2LANE-SUITE-BEGIN / { suite = $2; sub(/^boxrun_cgroups$/, "lib", suite); nfail_suite = 0; insuite = 1; next }
/^V2LANE-SUITE-END / {
    insuite = 0; indetail = 0
    rc = $3; sub(/^rc=/, "", rc)
    if (rc != 0 && nfail_suite == 0) {
        failed++; fails[failed] = "cgroups::" suite " (test binary exited " rc " without a failing test: crashed?)"
        if (live) out("v2lane: FAIL cgroups::" suite " exited " rc)
    }
    next
}
insuite && /^test .* \.\.\. (ok|FAILED|ignored)$/ {
    name = $2; res = $NF
    if (res == "ok") { passed++; if (live) out("v2lane: PASS cgroups::" suite "::" name) }
    else if (res == "FAILED") { failed++; nfail_suite++; fails[failed] = "cgroups::" suite "::" name; if (live) out("v2lane: FAIL cgroups::" suite "::" name) }
    else { ignored++; if (live) out("v2lane: IGNORED cgroups::" suite "::" name) }
    next
}
insuite && /^---- .* stdout ----$/ { indetail = 1 }
insuite && /^failures:$/ && indetail { indetail = 0 }
insuite && indetail { if (ndetail < 300) detail[++ndetail] = suite ": " $0; next }
/^V2LANE-CASE / {
    name = $2; res = $3
    if (res == "ok") { passed++; if (live) out("v2lane: PASS boxrun::" name) }
    else {
        why = $0; sub(/^V2LANE-CASE [^ ]+ FAILED: ?/, "", why)
        failed++; fails[failed] = "boxrun::" name ": " why
        if (live) out("v2lane: FAIL boxrun::" name ": " why)
    }
    next
}
/^V2LANE-DONE$/ { done = 1; next }
{ tail[++ntail % 40] = $0 }
END {
    if (live) exit 0
    if (!done) {
        failed++; fails[failed] = "vm: the lane did not finish (timeout, panic or crash); last console lines:"
        for (i = ntail - 39; i <= ntail; i++) if (i > 0) fails[failed] = fails[failed] "\n    " tail[i % 40]
    }
    if (failed > 0) {
        print "v2lane: failures:"
        for (i = 1; i <= failed; i++) print "v2lane:   " fails[i]
        if (ndetail > 0) {
            print "v2lane: test output of the failing tests:"
            for (i = 1; i <= ndetail; i++) print "v2lane:   " detail[i]
        }
    }
    if (ignored > 0) printf "v2lane: %d ignored\n", ignored
    printf "%d passed, %d failed\n", passed, failed
    exit (failed > 0 || passed == 0) ? 1 : 0
}
