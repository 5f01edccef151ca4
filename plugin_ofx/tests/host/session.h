// The instance's life in a session, and the scripted commands that drive it.
//
// In: the descriptors Describe and DescribeInContext filled (`g_descriptor`,
// `g_context_descriptor`) and the command words after `--`.
// Out: `create_instance` (from the context descriptor, restoring saved parameter values when a
// project is reopened), `destroy_instance`, `status_text` (the status parameter after
// SyncPrivateData), `describe_json` (the describe event), `run_command` (one command:
// commands.cpp), `split`, and the process's thread and file-descriptor counts.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "suites.h"

namespace testhost {

extern std::unique_ptr<Effect> g_descriptor, g_context_descriptor;

int count_threads();
int count_threads_settled(int expected);
int count_fds();

void create_instance(const std::map<std::string, std::string>* restore);
void destroy_instance();
std::string status_text();
void describe_json();

void run_command(const std::string& cmd);
std::vector<std::string> split(const std::string& s, char sep);

}  // namespace testhost
