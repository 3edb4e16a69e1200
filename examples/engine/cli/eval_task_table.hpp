// The tasks of `skipllm eval`, one row each in the task table (eval_task_table.cpp): the task's
// name, its defaults, what its input is and which options apply, how its data is read and how it
// runs. run_eval (eval_command.cpp) does everything else the same way for every task, so a new
// task is one row and its runner (plus its data reader and metrics in eval/).
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "cli/eval_command.hpp"
#include "cli/eval_report.hpp"
#include "cli/support.hpp"
#include "eval/eval_tasks.hpp"

namespace skipllm::cli {

//! A plain-text data file (perplexity, profile).
struct TextData {
  engine::eval::DataFile file;
  std::string text;
};

//! A task's data: plain text or JSONL items.
using TaskData =
    std::variant<TextData, engine::eval::Dataset<engine::eval::FactoidItem>,
                 engine::eval::Dataset<engine::eval::PromptItem>, engine::eval::Dataset<engine::eval::SummarizeItem>>;

//! Physical lines of the data file.
std::size_t data_lines(TaskData const& data);
//! JSONL items; 0 for text, which is counted in tokens once the tokenizer is loaded.
std::size_t data_items(TaskData const& data);

//! Everything a task's runner gets.
struct TaskRun {
  EvalOptions const& options;
  RunInfo const& info;
  engine::eval::EvalModel const& model;
  TaskData const& data;
  engine::eval::ProgressFn const& progress;
  OutputFile& plot;  //!< --plot (tasks that plot)
};

struct TaskRow {
  EvalTask task;
  std::string_view name;        //!< --task NAME
  char const* data_file;        //!< the dev set's report file of the task, under <data>/report
  int max_tokens = 128;         //!< default -n
  bool text_input = false;      //!< plain text, measured in tokens: -n, --limit do not apply; --window does
  bool takes_system = false;    //!< --system applies
  bool measures_dense = false;  //!< runs the dense model only: the policy options do not apply
  bool plots = false;           //!< --plot applies
  TaskData (*read)(std::filesystem::path const&);  //!< throws engine::eval::DataError
  TaskReport (*run)(TaskRun const&);
};

//! Every task, in the order of --help.
std::span<TaskRow const> task_table();

//! The row of `task`.
TaskRow const& task_row(EvalTask task);

}  // namespace skipllm::cli
