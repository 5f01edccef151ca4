// The scripted commands (session.h `run_command`): set, analyze, wait, status, render,
// abortrender, disconnect, source, reopen, sleep, joins; each as the top of main.cpp describes it.
#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "output.h"
#include "session.h"

namespace testhost {

namespace {

OfxStatus render_one(int t, double scale, int abort_after, const std::string& outdir, int thread_index, std::size_t seq) {
  const ofx::RectI b = scaled_bounds(scale, scale);
  auto out = make_image(b, scale, scale);
  out->host_owned = true;
  RenderContext ctx;
  ctx.output = out.get();
  ctx.sx = ctx.sy = scale;
  ctx.abort_after = abort_after;
  t_render = &ctx;
  PropSet in;
  in.set_d(ofx::kPropTime, {double(t)});
  in.set_i(ofx::kImageEffectPropRenderWindow, {b.x1, b.y1, b.x2, b.y2});
  in.set_d(ofx::kImageEffectPropRenderScale, {scale, scale});
  in.set_s(ofx::kImageEffectPropFieldToRender, {"OfxFieldNone"});
  in.set_i(ofx::kImageEffectPropSequentialRenderStatus, {0});
  in.set_i(ofx::kImageEffectPropInteractiveRenderStatus, {0});
  const auto start = std::chrono::steady_clock::now();
  OfxStatus st = call(ofx::kImageEffectActionRender, g_instance, &in, nullptr);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  t_render = nullptr;
  if (st == ofx::kStatOK && has_unwritten_row(*out)) {  // a host would show (and cache) this frame
    emit("{\"event\":\"misuse\",\"what\":\"render returned OK without writing its output\",\"time\":" +
         std::to_string(t) + "}");
    g_exit = 3;
  }
  if (!outdir.empty() && st == ofx::kStatOK) write_raw(outdir + "/frame_" + std::to_string(t) + "_" + std::to_string(seq) + ".raw", *out);
  emit("{\"event\":\"render\",\"time\":" + std::to_string(t) + ",\"seq\":" + std::to_string(seq) +
       ",\"status\":" + std::to_string(st) +
       ",\"thread\":" + std::to_string(thread_index) + ",\"ms\":" + std::to_string(ms) +
       ",\"abort_calls\":" + std::to_string(ctx.abort_calls) + "}");
  return st;
}

}  // namespace

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

void run_command(const std::string& cmd) {
  if (cmd.rfind("set:", 0) == 0) {
    const std::string kv = cmd.substr(4);
    const auto eq = kv.find('=');
    if (eq == std::string::npos) die("set needs NAME=VALUE");
    const std::string name = kv.substr(0, eq), value = kv.substr(eq + 1);
    Param* p = g_instance->params.find(name);
    if (!p) die("no parameter " + name);
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->type == ofx::kParamTypeString) p->sv = value;
      else if (p->type == ofx::kParamTypeDouble) p->dv = std::stod(value);
      else p->iv = std::stoi(value);
    }
    instance_changed(name, ofx::kChangeUserEdited);
  } else if (cmd == "analyze") {
    const auto start = std::chrono::steady_clock::now();
    instance_changed("analyze", ofx::kChangeUserEdited);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    emit("{\"event\":\"analyze\",\"ms\":" + std::to_string(ms) + ",\"status_text\":" + jstr(status_text()) + "}");
  } else if (cmd.rfind("wait:", 0) == 0) {
    auto parts = split(cmd.substr(5), ':');
    if (parts.size() != 2) die("wait:PREFIX[|PREFIX]:SECONDS");
    const auto prefixes = split(parts[0], '|');
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int(std::stod(parts[1]) * 1000));
    std::string s;
    while (true) {
      s = status_text();
      bool hit = false;
      for (const auto& p : prefixes) hit = hit || s.rfind(p, 0) == 0;
      if (hit) break;
      if (std::chrono::steady_clock::now() > deadline) {
        emit("{\"event\":\"timeout\",\"status_text\":" + jstr(s) + "}");
        g_exit = 3;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Param* a = g_instance->params.find("analysis");
    emit("{\"event\":\"status\",\"status_text\":" + jstr(s) + ",\"analysis\":" + jstr(a ? param_value_text(a) : "") + "}");
  } else if (cmd == "status") {
    std::string s = status_text();
    Param* a = g_instance->params.find("analysis");
    emit("{\"event\":\"status\",\"status_text\":" + jstr(s) + ",\"analysis\":" + jstr(a ? param_value_text(a) : "") + "}");
  } else if (cmd.rfind("render:", 0) == 0) {
    auto parts = split(cmd.substr(7), ':');
    if (parts.size() != 4) die("render:T,T,..:THREADS:SCALE:OUTDIR");
    std::vector<int> times;
    for (auto& t : split(parts[0], ',')) times.push_back(std::stoi(t));
    const int threads = std::max(1, std::stoi(parts[1]));
    const double scale = std::stod(parts[2]);
    const std::string outdir = parts[3];
    PropSet seq;
    seq.set_d(ofx::kImageEffectPropFrameRange, {double(g_opt.first), double(g_opt.first + g_opt.count - 1)});
    seq.set_d(ofx::kImageEffectPropFrameStep, {1.0});
    seq.set_i("OfxPropIsInteractive", {0});
    seq.set_d(ofx::kImageEffectPropRenderScale, {scale, scale});
    seq.set_i(ofx::kImageEffectPropSequentialRenderStatus, {0});
    seq.set_i(ofx::kImageEffectPropInteractiveRenderStatus, {0});
    call(ofx::kImageEffectActionBeginSequenceRender, g_instance, &seq, nullptr);
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    for (int k = 0; k < threads; ++k)
      pool.emplace_back([&, k] {
        for (std::size_t i; (i = next++) < times.size();) render_one(times[i], scale, -1, outdir, k, i);
      });
    for (auto& th : pool) th.join();
    call(ofx::kImageEffectActionEndSequenceRender, g_instance, &seq, nullptr);
  } else if (cmd.rfind("abortrender:", 0) == 0) {  // abort() turns 1 after AFTER calls (default 0)
    auto parts = split(cmd.substr(12), ':');
    render_one(std::stoi(parts.at(0)), 1.0, parts.size() > 1 ? std::stoi(parts[1]) : 0, "", 0, 0);
  } else if (cmd.rfind("joins:", 0) == 0) {  // the host checks its own thread count: N threads joined
    const int n = std::stoi(cmd.substr(6)), baseline = count_threads();
    int listed = 0, listed_settled = 0;
    for (int i = 0; i < n; ++i) {
      std::thread([] {}).join();
      listed += count_threads() != baseline;
      listed_settled += count_threads_settled(baseline) != baseline;
    }
    emit("{\"event\":\"joins\",\"count\":" + std::to_string(n) + ",\"listed_right_after_join\":" +
         std::to_string(listed) + ",\"listed_after_settling\":" + std::to_string(listed_settled) + "}");
  } else if (cmd == "disconnect") {  // the Source clip loses its input
    g_opt.connected = false;
    g_instance->clips.at(ofx::kImageEffectSimpleSourceClipName)->props.set_i(ofx::kImageClipPropConnected, {0});
  } else if (cmd.rfind("source:", 0) == 0) {
    load_frames(cmd.substr(7));
  } else if (cmd == "reopen") {
    // Save the persistent parameters, destroy the instance, create a new one from them (as a
    // host does when a project is closed and opened again).
    std::map<std::string, std::string> saved;
    for (auto& p : g_instance->params.params)
      if (p->props.gi(ofx::kParamPropPersistant, 1) && p->type != ofx::kParamTypePushButton)
        saved[p->name] = param_value_text(p.get());
    destroy_instance();
    create_instance(&saved);
  } else if (cmd.rfind("sleep:", 0) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(int(std::stod(cmd.substr(6)) * 1000)));
  } else {
    die("unknown command " + cmd);
  }
}

}  // namespace testhost
