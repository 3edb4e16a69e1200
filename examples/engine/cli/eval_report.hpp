// What every `skipllm eval` report has, whatever the task: the header (task, data, model,
// policy), the task's own part (a TaskReport, written by the task's runner), the skip statistics
// and the footer (timings, runtime); as text and as JSON (schema skipllm.eval/1, docs/eval.md).
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

#include <skipllm/policy/bundle.hpp>

#include "eval/eval_tasks.hpp"
#include "format/policy_config.hpp"

namespace skipllm::cli {

struct TaskRow;  // eval_task_table.hpp

//! The policy an eval run uses, as its report shows it.
struct ResolvedPolicy {
  engine::PolicyConfig settings;  //!< the policy as resolved: the file with the options' overrides, or the options
  skipllm::policy::ConfigurablePolicies policies;  //!< what runs (engine::make_policies(settings))
  std::string description;
  bool dense = false;
  std::optional<std::string> config;  //!< --config FILE
};

//! Everything a report says besides the task's own result.
struct RunInfo {
  TaskRow const* task = nullptr;
  std::string data_path;
  std::size_t data_lines = 0, data_items = 0, used_items = 0;  //!< text tasks: items = text tokens
  std::string model_path, model_name;
  int layers = 0;
  ResolvedPolicy policy;
  double load_s = 0;
  int threads = 0, ctx = 0, max_tokens = 0;
};

//! What a task's run adds to the parts every report has.
struct TaskReport {
  double seconds = 0;                           //!< wall time of the run
  std::optional<engine::eval::RunStats> stats;  //!< the policy run's skip statistics; none for a dense-only task
  std::ostringstream text;                      //!< the task's lines of the text report
  std::ostringstream json_fields;               //!< its JSON fields, between the header and the skip statistics
  std::ostringstream json_items;                //!< after the footer: `,\n  "items": [...]`, or nothing
};

//! The text report: the header, the task's lines, its skip statistics, the footer.
std::string text_report(RunInfo const& info, TaskReport const& task);

//! The JSON summary: the header, the task's fields, its skip statistics, the footer, its items.
void write_eval_json(std::ostream& os, RunInfo const& info, TaskReport const& task);

}  // namespace skipllm::cli
