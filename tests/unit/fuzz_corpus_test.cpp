// Every seed (fuzz/corpus/TARGET/) and every input that once crashed a fuzz target
// (fuzz/regressions/TARGET/) through the target's function, in every build: a regression comes
// back as a failed check (an abort that names the file), an uncaught exception or, in the
// sanitizer builds, a sanitizer report.
#include <fuzz_targets.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace bidding::fuzz {
namespace {

struct fuzz_target {
    const char* name;
    void (*one)(std::string_view);
};

// The list of fuzz/targets.cmake.
const fuzz_target targets[] = {
    {"price", price_one},     {"client_message", client_message_one}, {"config", config_one},
    {"url", url_one},         {"http_request", http_request_one},     {"bus_message", bus_message_one},
    {"ws_frames", ws_frames_one}, {"timed_auction", timed_auction_one},
};

// gtest and ctest name each test by its target.
void PrintTo(const fuzz_target& target, std::ostream* os) { *os << target.name; }

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    if (std::filesystem::is_directory(dir)) {
        for (const auto& entry : std::filesystem::directory_iterator(dir)) {
            if (entry.is_regular_file()) out.push_back(entry.path());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzCorpus : public ::testing::TestWithParam<fuzz_target> {};

TEST_P(FuzzCorpus, EverySeedAndRegressionPasses) {
    const std::filesystem::path root = BIDDING_FUZZ_DIR;
    const auto seeds = files_in(root / "corpus" / GetParam().name);
    const auto regressions = files_in(root / "regressions" / GetParam().name);
    // A target without seeds: the folder moved, and this test would replay nothing.
    ASSERT_FALSE(seeds.empty()) << "no seeds in " << (root / "corpus" / GetParam().name);
    for (const auto* list : {&seeds, &regressions}) {
        for (const auto& file : *list) {
            replay_input_name() = file.string();
            try {
                GetParam().one(read_file(file));
            } catch (const std::exception& e) {
                ADD_FAILURE() << file << ": uncaught exception: " << e.what();
            }
        }
    }
    replay_input_name().clear();
    std::cout << "replayed " << seeds.size() << " seeds and " << regressions.size() << " regressions\n";
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(targets),
                         [](const ::testing::TestParamInfo<fuzz_target>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace bidding::fuzz
