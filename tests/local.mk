#   Tests: TAP programs and scripts run by automake's tap-driver.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
PY_LOG_DRIVER = $(LOG_DRIVER)
PY_LOG_COMPILER = $(PYTHON)
TEST_EXTENSIONS = .sh .py
AM_TESTS_ENVIRONMENT = \
    srcdir='$(abs_top_srcdir)'; top_builddir='$(abs_top_builddir)'; MAKE='$(MAKE)'; \
    CC='$(CC)'; CFLAGS='$(CFLAGS)'; LDFLAGS='$(LDFLAGS)'; PKG_CONFIG='$(PKG_CONFIG)'; \
    PYTHON='$(PYTHON)'; PYTHONPATH='$(abs_top_srcdir)/tests/peer'; PYTHONDONTWRITEBYTECODE=1; \
    export srcdir top_builddir MAKE CC CFLAGS LDFLAGS PKG_CONFIG PYTHON PYTHONPATH \
        PYTHONDONTWRITEBYTECODE;

#   Test programs link the whole core statically, so they can reach the
#   classes that the shared library does not export.
TEST_LIBS = libchorus_core.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(MSGPACK_LIBS) $(LEVELDB_LIBS)

CHORUS_C_TESTS = \
    tests/test_codec_round_trip \
    tests/test_codec_rejects_malformed \
    tests/test_spec_matches_codec \
    tests/test_errors_and_version
check_PROGRAMS += $(CHORUS_C_TESTS) tests/fuzz/make_corpus
TESTS += $(CHORUS_C_TESTS) \
    tests/test_fuzz_corpus_is_current.sh \
    tests/test_tools_answer_help.sh \
    tests/test_layers_point_down.sh \
    tests/test_installed_library_links.sh \
    tests/test_keygen_writes_certificates.sh \
    tests/test_security_options_are_checked.sh

tests_test_codec_round_trip_SOURCES = tests/test_codec_round_trip.c tests/codec_fixtures.h tests/tap.h
tests_test_codec_round_trip_LDADD = $(TEST_LIBS)
tests_test_codec_rejects_malformed_SOURCES = tests/test_codec_rejects_malformed.c
tests_test_codec_rejects_malformed_LDADD = $(TEST_LIBS)
tests_test_spec_matches_codec_SOURCES = tests/test_spec_matches_codec.c
tests_test_spec_matches_codec_LDADD = $(TEST_LIBS)
tests_test_errors_and_version_SOURCES = tests/test_errors_and_version.c
tests_test_errors_and_version_LDADD = $(TEST_LIBS)
tests_test_errors_and_version_CPPFLAGS = $(AM_CPPFLAGS) -DCHORUS_PACKAGE_VERSION='"$(PACKAGE_VERSION)"'
tests_fuzz_make_corpus_SOURCES = tests/fuzz/make_corpus.c
tests_fuzz_make_corpus_LDADD = $(TEST_LIBS)

EXTRA_DIST += tests/test_fuzz_corpus_is_current.sh tests/test_tools_answer_help.sh tests/mesh.sh \
    tests/test_layers_point_down.sh \
    tests/test_installed_library_links.sh tests/installed_consumer.c tests/tap.sh \
    tests/fuzz/corpus tests/test_keygen_writes_certificates.sh \
    tests/test_security_options_are_checked.sh

if ENABLE_FUZZING
#   Built with scripts/fuzz: the core is compiled with -fsanitize=fuzzer-no-link,
#   and this target adds libFuzzer's main.
noinst_PROGRAMS += tests/fuzz/fuzz_chorus_msg
tests_fuzz_fuzz_chorus_msg_SOURCES = tests/fuzz/fuzz_chorus_msg.c
tests_fuzz_fuzz_chorus_msg_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_chorus_msg_LDFLAGS = -fsanitize=fuzzer
tests_fuzz_fuzz_chorus_msg_LDADD = $(TEST_LIBS)
endif

#   JSON bridge
check_PROGRAMS += tests/test_json_bridge
TESTS += tests/test_json_bridge
tests_test_json_bridge_SOURCES = tests/test_json_bridge.c
tests_test_json_bridge_LDADD = $(TEST_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_payload_fields
TESTS += tests/test_payload_fields
tests_test_payload_fields_SOURCES = tests/test_payload_fields.c
tests_test_payload_fields_LDADD = $(TEST_LIBS)

#   Store
check_PROGRAMS += tests/test_store_keeps_state
TESTS += tests/test_store_keeps_state
tests_test_store_keeps_state_SOURCES = tests/test_store_keeps_state.c
tests_test_store_keeps_state_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/test_metrics_text
TESTS += tests/test_metrics_text
tests_test_metrics_text_SOURCES = tests/test_metrics_text.c
tests_test_metrics_text_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/test_store_finds_damaged_events
TESTS += tests/test_store_finds_damaged_events
tests_test_store_finds_damaged_events_SOURCES = tests/test_store_finds_damaged_events.c
tests_test_store_finds_damaged_events_LDADD = $(TEST_LIBS)

#   Node agent: a node in its own process, and the integration tests
check_PROGRAMS += tests/node_helper
tests_node_helper_SOURCES = tests/node_helper.c
tests_node_helper_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS)
EXTRA_DIST += tests/testutil.h
CHORUS_NODE_TESTS = \
    tests/test_discovery_meets_peers \
    tests/test_group_shares_events \
    tests/test_group_catches_up \
    tests/test_observer_repairs_gaps \
    tests/test_commands_route_and_fail \
    tests/test_tracing_links_causes \
    tests/test_flush_hook_groups_writes \
    tests/test_secure_mesh \
    tests/test_handlers_answer_later \
    tests/test_node_runs_inline \
    tests/test_failures_say_why
check_PROGRAMS += $(CHORUS_NODE_TESTS)
TESTS += $(CHORUS_NODE_TESTS) tests/test_beacon_discovery.sh tests/test_shell_bridge.sh \
    tests/test_shell_bridge_runs_handlers_at_once.sh \
    tests/test_persistent_handlers_answer_commands.sh \
    tests/test_persistent_handlers_take_events_once.sh \
    tests/test_handlers_keep_node_through_signals.sh \
    tests/test_on_stops_promptly.sh tests/test_clock_step_keeps_timers.sh \
    tests/test_store_damage_is_refused.sh tests/test_crash_keeps_new_events.sh \
    tests/test_disk_full_is_refused.sh tests/test_store_says_why.sh tests/test_peers_show_keys.sh \
    tests/test_sighup_keeps_programs_running.sh tests/test_secure_mesh_runs_flows.sh \
    tests/test_nodes_announce_reachable_addresses.sh tests/test_node_serves_metrics.sh \
    tests/test_coordinator_serves_flow_metrics.sh tests/test_alert_rules_fire.sh \
    tests/test_prometheus_scrapes_mesh.sh tests/test_metrics_count_topics.sh \
    tests/test_paused_node_keeps_peers.sh tests/test_mesh_on_demand.sh
EXTRA_DIST += tests/test_beacon_discovery.sh tests/test_shell_bridge.sh \
    tests/test_shell_bridge_runs_handlers_at_once.sh \
    tests/test_persistent_handlers_answer_commands.sh \
    tests/test_persistent_handlers_take_events_once.sh \
    tests/test_handlers_keep_node_through_signals.sh \
    tests/test_on_stops_promptly.sh tests/test_clock_step_keeps_timers.sh \
    tests/test_store_damage_is_refused.sh tests/test_crash_keeps_new_events.sh \
    tests/test_disk_full_is_refused.sh tests/test_store_says_why.sh tests/test_peers_show_keys.sh \
    tests/test_sighup_keeps_programs_running.sh tests/test_secure_mesh_runs_flows.sh \
    tests/test_nodes_announce_reachable_addresses.sh tests/test_node_serves_metrics.sh \
    tests/test_coordinator_serves_flow_metrics.sh tests/test_alert_rules_fire.sh \
    tests/test_prometheus_scrapes_mesh.sh tests/test_metrics_count_topics.sh \
    tests/test_paused_node_keeps_peers.sh tests/test_mesh_on_demand.sh
#   Meshes across hosts: network namespaces on a bridge (tests/netns.sh)
CHORUS_NETNS_TESTS = tests/test_netns_beacon_discovery.sh tests/test_netns_seed_discovery.sh \
    tests/test_netns_lossy_links_deliver.sh tests/test_netns_partition_heals.sh \
    tests/test_netns_stopped_node_comes_back.sh
TESTS += $(CHORUS_NETNS_TESTS)
EXTRA_DIST += $(CHORUS_NETNS_TESTS) tests/netns.sh
tests_test_discovery_meets_peers_LDADD = $(TEST_LIBS)
tests_test_group_shares_events_LDADD = $(TEST_LIBS)
tests_test_group_catches_up_LDADD = $(TEST_LIBS)
tests_test_observer_repairs_gaps_LDADD = $(TEST_LIBS)
tests_test_commands_route_and_fail_LDADD = $(TEST_LIBS)
tests_test_tracing_links_causes_LDADD = $(TEST_LIBS)
tests_test_flush_hook_groups_writes_LDADD = $(TEST_LIBS)
tests_test_secure_mesh_LDADD = $(TEST_LIBS)
tests_test_handlers_answer_later_LDADD = $(TEST_LIBS)
tests_test_node_runs_inline_LDADD = $(TEST_LIBS)
tests_test_failures_say_why_LDADD = $(TEST_LIBS)

#   Processes killed and restarted
check_PROGRAMS += tests/test_instance_killed_midstream tests/test_publisher_crash_keeps_events tests/test_command_survives_instance_kill \
    tests/test_publish_batch_is_atomic tests/test_lazy_publish_is_flushed_apart
TESTS += tests/test_instance_killed_midstream tests/test_publisher_crash_keeps_events tests/test_command_survives_instance_kill \
    tests/test_publish_batch_is_atomic tests/test_lazy_publish_is_flushed_apart
tests_test_publish_batch_is_atomic_LDADD = $(TEST_LIBS)
tests_test_lazy_publish_is_flushed_apart_LDADD = $(TEST_LIBS) -lpthread
tests_test_instance_killed_midstream_SOURCES = tests/test_instance_killed_midstream.c
tests_test_instance_killed_midstream_LDADD = $(TEST_LIBS)
tests_test_publisher_crash_keeps_events_SOURCES = tests/test_publisher_crash_keeps_events.c
tests_test_publisher_crash_keeps_events_LDADD = $(TEST_LIBS)
tests_test_command_survives_instance_kill_SOURCES = tests/test_command_survives_instance_kill.c
tests_test_command_survives_instance_kill_LDADD = $(TEST_LIBS)

#   Inbox dedupe and bad input, against a hand-made peer
check_PROGRAMS += tests/test_inbox_runs_handlers_once tests/test_bad_input_is_dropped
TESTS += tests/test_inbox_runs_handlers_once tests/test_bad_input_is_dropped
tests_test_inbox_runs_handlers_once_SOURCES = tests/test_inbox_runs_handlers_once.c tests/fake_peer.h
tests_test_inbox_runs_handlers_once_LDADD = $(TEST_LIBS)
tests_test_bad_input_is_dropped_SOURCES = tests/test_bad_input_is_dropped.c tests/fake_peer.h
tests_test_bad_input_is_dropped_LDADD = $(TEST_LIBS)

#   Benchmarks (scripts/bench), built but not run by make check
noinst_PROGRAMS += tests/bench/bench_node
#   Each writes its figures with --json FILE (tests/bench/bench_json.c)
BENCH_JSON = tests/bench/bench_json.c tests/bench/bench_json.h
noinst_PROGRAMS += tests/bench/bench_node
tests_bench_bench_node_SOURCES = tests/bench/bench_node.c $(BENCH_JSON)
tests_bench_bench_node_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS) -lpthread
noinst_PROGRAMS += tests/bench/bench_flows
tests_bench_bench_flows_SOURCES = tests/bench/bench_flows.c $(BENCH_JSON)
tests_bench_bench_flows_LDADD = libchorus_coordinator.la libchorus.la \
    $(CZMQ_LIBS) $(ZMQ_LIBS) $(YAML_LIBS) $(JANSSON_LIBS) $(MSGPACK_LIBS) $(LEVELDB_LIBS) -lpthread
noinst_PROGRAMS += tests/bench/bench_fanout
tests_bench_bench_fanout_SOURCES = tests/bench/bench_fanout.c $(BENCH_JSON)
tests_bench_bench_fanout_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS) -lpthread
noinst_PROGRAMS += tests/bench/bench_durable
tests_bench_bench_durable_SOURCES = tests/bench/bench_durable.c $(BENCH_JSON)
tests_bench_bench_durable_LDADD = libchorus.la $(CZMQ_LIBS) $(ZMQ_LIBS) $(JANSSON_LIBS)
#   The RabbitMQ baseline of the durable publish figures, when its client is there
if HAVE_RABBITMQ
noinst_PROGRAMS += tests/bench/bench_rabbit
tests_bench_bench_rabbit_SOURCES = tests/bench/bench_rabbit.c $(BENCH_JSON)
tests_bench_bench_rabbit_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS) $(JANSSON_CFLAGS)
tests_bench_bench_rabbit_LDADD = $(RABBITMQ_LIBS) $(JANSSON_LIBS) -lm
endif
#   The NATS baselines of scripts/bench --peers, when its client is there
if HAVE_NATS
noinst_PROGRAMS += tests/bench/bench_nats
tests_bench_bench_nats_SOURCES = tests/bench/bench_nats.c $(BENCH_JSON)
tests_bench_bench_nats_CFLAGS = $(AM_CFLAGS) $(NATS_CFLAGS) $(JANSSON_CFLAGS)
tests_bench_bench_nats_LDADD = $(NATS_LIBS) $(JANSSON_LIBS) -lm -lpthread
endif
#   Their --json output, run tiny (figures never judged), and the merge
TESTS += tests/test_bench_writes_json.sh
TESTS += tests/test_node_tests_pass_inline.sh
EXTRA_DIST += tests/test_node_tests_pass_inline.sh
EXTRA_DIST += tests/test_bench_writes_json.sh scripts/lib/figures.py scripts/lib/scale.py

#   Flow engine
check_PROGRAMS += tests/test_flow_engine_runs_steps tests/test_flow_engine_compensates
TESTS += tests/test_flow_engine_runs_steps tests/test_flow_engine_compensates
tests_test_flow_engine_runs_steps_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
EXTRA_DIST += tests/flow_fixtures.h
tests_test_flow_engine_compensates_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_flow_records_rebuild_state
TESTS += tests/test_flow_records_rebuild_state
tests_test_flow_records_rebuild_state_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_flow_engine_fans_out
TESTS += tests/test_flow_engine_fans_out
tests_test_flow_engine_fans_out_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
#   when: conditions and sleep: steps
check_PROGRAMS += tests/test_when_conditions_evaluate tests/test_flow_engine_branches_and_sleeps
TESTS += tests/test_when_conditions_evaluate tests/test_flow_engine_branches_and_sleeps
tests_test_when_conditions_evaluate_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
tests_test_flow_engine_branches_and_sleeps_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_flow_engine_returns_output
TESTS += tests/test_flow_engine_returns_output
tests_test_flow_engine_returns_output_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_flow_engine_runs_sub_flows
TESTS += tests/test_flow_engine_runs_sub_flows
tests_test_flow_engine_runs_sub_flows_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)

check_PROGRAMS += tests/test_flow_engine_awaits tests/test_await_examples_load
TESTS += tests/test_flow_engine_awaits tests/test_await_examples_load
tests_test_flow_engine_awaits_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
tests_test_await_examples_load_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)

#   The coordinator's timer heap
#   The node engine's classes, each with a fake context
check_PROGRAMS += tests/test_node_classes
TESTS += tests/test_node_classes
tests_test_node_classes_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/test_timers_fire_in_order
TESTS += tests/test_timers_fire_in_order
tests_test_timers_fire_in_order_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)

#   The coordinator, in-process with its services
check_PROGRAMS += tests/test_coordinator_runs_flows
TESTS += tests/test_coordinator_runs_flows
tests_test_coordinator_runs_flows_LDADD = libchorus_coordinator.la $(TEST_LIBS) \
    $(YAML_LIBS) $(JANSSON_LIBS)

#   Flow definitions
check_PROGRAMS += tests/test_flowdef_loads_flows tests/test_flowdef_reports_errors
TESTS += tests/test_flowdef_loads_flows tests/test_flowdef_reports_errors
tests_test_flowdef_loads_flows_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
tests_test_flowdef_reports_errors_LDADD = libchorus_coordinator.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
EXTRA_DIST += tests/flows

#   chorus flow
TESTS += tests/test_flow_cli.sh
EXTRA_DIST += tests/test_flow_cli.sh
TESTS += tests/test_flow_returns_output.sh
EXTRA_DIST += tests/test_flow_returns_output.sh
TESTS += tests/test_flows_md_examples_load.sh
EXTRA_DIST += tests/test_flows_md_examples_load.sh
TESTS += tests/test_coordinator_runs_sub_flows.sh
EXTRA_DIST += tests/test_coordinator_runs_sub_flows.sh
TESTS += tests/test_sub_flow_names_are_checked.sh
EXTRA_DIST += tests/test_sub_flow_names_are_checked.sh

#   Start ids tied to their flow, and a status of any size, on a real mesh
TESTS += tests/test_flow_start_ids.sh tests/test_flow_status_pages.sh
EXTRA_DIST += tests/test_flow_start_ids.sh tests/test_flow_status_pages.sh
TESTS += tests/test_flow_awaits_events_and_signals.sh
EXTRA_DIST += tests/test_flow_awaits_events_and_signals.sh

#   when: branches and sleep: steps, on a real mesh
TESTS += tests/test_coordinator_branches_flows.sh tests/test_coordinator_sleeps_through_kills.sh
EXTRA_DIST += tests/test_coordinator_branches_flows.sh tests/test_coordinator_sleeps_through_kills.sh

#   chorus publish --lines, in batches
TESTS += tests/test_publish_lines_reach_group_once.sh
EXTRA_DIST += tests/test_publish_lines_reach_group_once.sh

#   Coordinator under kills, late services, two coordinators, versions
TESTS += tests/test_coordinator_survives_kills.sh tests/test_coordinator_survives_kills_mid_flows.sh tests/test_coordinator_waits_for_service.sh tests/test_two_coordinators_share_triggers.sh tests/test_flow_versions.sh \
    tests/test_coordinator_reloads_flows.sh tests/test_coordinator_keeps_flows_through_sighups.sh \
    tests/test_coordinator_refuses_bad_flows.sh tests/test_coordinator_fans_out.sh \
    tests/test_coordinator_keeps_late_work.sh
EXTRA_DIST += tests/test_coordinator_survives_kills.sh tests/test_coordinator_survives_kills_mid_flows.sh tests/test_coordinator_waits_for_service.sh tests/test_two_coordinators_share_triggers.sh tests/test_flow_versions.sh \
    tests/test_coordinator_reloads_flows.sh tests/test_coordinator_keeps_flows_through_sighups.sh \
    tests/test_coordinator_refuses_bad_flows.sh tests/test_coordinator_fans_out.sh \
    tests/test_coordinator_keeps_late_work.sh

#   A strict peer written from the spec alone (tests/peer), and what it
#   finds when it meets the tools and attacks a node
CHORUS_PY_TESTS = tests/peer/test_strict_peer_self.py tests/peer/test_strict_peer_meets_tools.py \
    tests/peer/test_node_answers_errors.py tests/peer/test_node_survives_attacks.py \
    tests/peer/test_node_out_of_sockets.py tests/peer/test_secure_peer_is_refused.py \
    tests/peer/test_secure_peer_is_forbidden.py tests/peer/test_secure_strict_peer_meets_node.py \
    tests/peer/test_secure_link_hides_payloads.py tests/peer/test_node_notes_broken_handshakes.py \
    tests/peer/test_node_ignores_forged_deaths.py tests/peer/test_node_takes_datagrams.py \
    tests/peer/test_node_prefers_greeters.py \
    tests/peer/test_node_closes_idle_connections.py tests/peer/test_node_acks_together.py
TESTS += $(CHORUS_PY_TESTS)
EXTRA_DIST += $(CHORUS_PY_TESTS) tests/peer/chorus_peer.py tests/peer/tap.py tests/peer/tools.py

#   The coordinator's journal and emits under damage and kills
check_PROGRAMS += tests/test_journal_refuses_damage
TESTS += tests/test_journal_refuses_damage
tests_test_journal_refuses_damage_LDADD = libchorus_journal.la $(TEST_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_journal_expires_traces
TESTS += tests/test_journal_expires_traces
tests_test_journal_expires_traces_LDADD = libchorus_journal.la $(TEST_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_journal_writer_holds_failed_batches
TESTS += tests/test_journal_writer_holds_failed_batches
tests_test_journal_writer_holds_failed_batches_LDADD = libchorus_journal.la $(TEST_LIBS) \
    $(JANSSON_LIBS)
TESTS += tests/test_coordinator_refuses_damaged_journal.sh tests/test_coordinator_emits_once_under_kills.sh \
    tests/test_coordinator_emits_once_under_kills_fsynced.sh
EXTRA_DIST += tests/test_coordinator_refuses_damaged_journal.sh \
    tests/test_coordinator_emits_once_under_kills.sh \
    tests/test_coordinator_emits_once_under_kills_fsynced.sh
check_PROGRAMS += tests/test_coordinator_keeps_unpublished_events
TESTS += tests/test_coordinator_keeps_unpublished_events
tests_test_coordinator_keeps_unpublished_events_LDADD = libchorus_coordinator.la \
    $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
TESTS += tests/test_coordinator_survives_full_disk.sh
EXTRA_DIST += tests/test_coordinator_survives_full_disk.sh
TESTS += tests/test_coordinator_says_why_journal_is_unusable.sh
EXTRA_DIST += tests/test_coordinator_says_why_journal_is_unusable.sh
check_PROGRAMS += tests/test_coordinator_refuses_damaged_deltas
TESTS += tests/test_coordinator_refuses_damaged_deltas
tests_test_coordinator_refuses_damaged_deltas_LDADD = libchorus_coordinator.la \
    libchorus_journal.la $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)
check_PROGRAMS += tests/test_coordinator_refuses_bad_records
TESTS += tests/test_coordinator_refuses_bad_records
tests_test_coordinator_refuses_bad_records_LDADD = libchorus_coordinator.la \
    $(TEST_LIBS) $(YAML_LIBS) $(JANSSON_LIBS)

#   The Python binding (bindings/python): its pytest suite, in three parts
#   so that each stays short, against this build's library and tools
CHORUS_PY_BINDING_TESTS = tests/test_python_binding.sh \
    tests/test_python_group_takes_events_once.sh tests/test_python_signals_stop_run.sh
TESTS += $(CHORUS_PY_BINDING_TESTS)
EXTRA_DIST += $(CHORUS_PY_BINDING_TESTS) tests/pytest.sh

#   The document pipeline (examples/document-pipeline): scripts/pipeline-demo
#   with 3 bundles, real OCR and an OCR instance killed mid-run
TESTS += tests/test_document_pipeline_survives_ocr_kill.sh
EXTRA_DIST += tests/test_document_pipeline_survives_ocr_kill.sh scripts/pipeline-demo \
    examples/document-pipeline/README.md examples/document-pipeline/generate.py \
    examples/document-pipeline/run.py examples/document-pipeline/flows/process_bundle.yaml \
    examples/document-pipeline/flows/process_document.yaml \
    examples/document-pipeline/services/service.py examples/document-pipeline/services/splitter.py \
    examples/document-pipeline/services/ocr.py examples/document-pipeline/services/classifier.py \
    examples/document-pipeline/services/extractor.py

#   The coordinator's web console: its JSON API on a real mesh
TESTS += tests/test_console_api.py tests/test_console_needs_token.py \
    tests/test_console_keeps_tries.py
EXTRA_DIST += tests/test_console_api.py tests/test_console_needs_token.py tests/console.py \
    tests/test_console_keeps_tries.py
#   ... and its pages in Debian's chromium
TESTS += tests/test_console_pages.sh
EXTRA_DIST += tests/test_console_pages.sh tests/web/console.test.mjs tests/web/package.json \
    tests/web/package-lock.json
