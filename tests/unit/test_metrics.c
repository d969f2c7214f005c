/* test_metrics.c: the Prometheus rendering: counters by status class, cumulative histogram
 * buckets, vLLM-compatible gauges, and label escaping. */
#include <string.h>

#include "server/metrics.h"
#include "tests/test.h"

int main(void)
{
    struct metrics m;
    metrics_init(&m, 100.0);
    metrics_request_done(&m, 200);
    metrics_request_done(&m, 200);
    metrics_request_done(&m, 404);
    metrics_observe_ttft(&m, 0.02);
    metrics_observe_ttft(&m, 0.3);
    metrics_observe_ttft(&m, 1000);
    atomic_store(&m.generated_tokens, 50);
    atomic_store(&m.requests_running, 3);
    atomic_store(&m.requests_waiting, 2);
    atomic_store(&m.kv_used_tokens, 256);
    atomic_store(&m.kv_total_tokens, 1024);
    char *t = metrics_render(&m, 110.0, "tiny\"model");
    REQUIRE(t, "rendered");
    CHECK(strstr(t, "moeserve_requests_total{status=\"2xx\"} 2\n"), "2xx count");
    CHECK(strstr(t, "moeserve_requests_total{status=\"4xx\"} 1\n"), "4xx count");
    CHECK(strstr(t, "moeserve_time_to_first_token_seconds_bucket{model_name=\"tiny_model\",le=\"0.025\"} 1\n"),
          "bucket 0.025 holds the 0.02 observation");
    CHECK(strstr(t, "le=\"0.5\"} 2\n"), "cumulative bucket 0.5");
    CHECK(strstr(t, "le=\"+Inf\"} 3\n"), "+Inf bucket counts all");
    CHECK(strstr(t, "moeserve_time_to_first_token_seconds_count{model_name=\"tiny_model\"} 3\n"), "count");
    CHECK(strstr(t, "vllm:num_requests_running{model_name=\"tiny_model\"} 3\n"), "vLLM running gauge");
    CHECK(strstr(t, "vllm:num_requests_waiting{model_name=\"tiny_model\"} 2\n"), "vLLM waiting gauge");
    CHECK(strstr(t, "vllm:kv_cache_usage_perc{model_name=\"tiny_model\"} 0.25\n"), "KV usage fraction");
    CHECK(strstr(t, "moeserve_generation_tokens_per_second{model_name=\"tiny_model\"} 5\n"), "tokens/s");
    free(t);
    metrics_destroy(&m);
    return test_finish();
}
