# The fuzz targets, one name each: fuzz/targets/NAME.cpp defines bidding::fuzz::NAME_one, and
# fuzz/corpus/NAME/ holds its seeds. Read by fuzz/CMakeLists.txt (the libFuzzer executables) and
# tests/CMakeLists.txt (the unit tests replay every seed and regression input through the same
# functions, so every build runs them, not only the Clang one).
set(bidding_fuzz_targets
  price
  client_message
  config
  url
  http_request
  bus_message
  ws_frames
  timed_auction
)
set(bidding_fuzz_target_sources)
foreach(name IN LISTS bidding_fuzz_targets)
  list(APPEND bidding_fuzz_target_sources "${CMAKE_CURRENT_LIST_DIR}/targets/${name}.cpp")
endforeach()
