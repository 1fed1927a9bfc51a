#include <bidding/cli.hpp>

int main(int argc, char** argv) { return bidding::run_cli(argc, argv); }
