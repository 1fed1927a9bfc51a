#include <bidding/json_object.hpp>

#include <gtest/gtest.h>

using namespace bidding;

TEST(JsonObject, MembersKeepTheirKindAndExactText) {
    const auto doc = json_object::read(R"({"name":"ann","price":112233.445,"n":null,"o":{"x":1},"a":[1,2],"t":true})");
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(doc->document_kind(), json_kind::object);
    ASSERT_NE(doc->find("price"), nullptr);
    EXPECT_EQ(doc->find("price")->kind, json_kind::number);
    EXPECT_EQ(doc->find("price")->text, "112233.445") << "the source text, never a double's rounding";
    EXPECT_EQ(doc->find("name")->text, "ann");
    EXPECT_EQ(doc->find("n")->kind, json_kind::null);
    EXPECT_EQ(doc->find("o")->kind, json_kind::object);
    EXPECT_EQ(doc->find("a")->kind, json_kind::array);
    EXPECT_EQ(doc->find("t")->kind, json_kind::boolean);
    EXPECT_EQ(doc->find("x"), nullptr) << "nested members are not top-level ones";
}

TEST(JsonObject, NumbersADoubleCannotHoldAreStillNumbers) {
    const auto doc = json_object::read(R"({"a":1e400,"b":-1e999,"c":"1e400","d":[1e500],"e":2})");
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(doc->find("a")->kind, json_kind::number);
    EXPECT_EQ(doc->find("a")->text, "1e400");
    EXPECT_EQ(doc->find("b")->text, "-1e999");
    EXPECT_EQ(doc->find("c")->kind, json_kind::string) << "a string that looks like one is left alone";
    EXPECT_EQ(doc->find("e")->text, "2") << "later numbers keep their own text";
}

TEST(JsonObject, DuplicatesAreReportedAndTheFirstValueKept) {
    const auto doc = json_object::read(R"({"price":1,"name":"a","price":2})");
    ASSERT_TRUE(doc.has_value());
    EXPECT_EQ(doc->first_duplicate(), "price");
    EXPECT_EQ(doc->find("price")->text, "1");
    EXPECT_FALSE(json_object::read(R"({"a":{"b":1,"b":2}})")->first_duplicate().has_value())
        << "only top-level names count";
}

TEST(JsonObject, InvalidJsonAndOtherDocuments) {
    EXPECT_FALSE(json_object::read("").has_value());
    EXPECT_FALSE(json_object::read("{").has_value());
    EXPECT_FALSE(json_object::read(R"({"a":01})").has_value());
    EXPECT_FALSE(json_object::read(R"({"a":1} x)").has_value());
    EXPECT_EQ(json_object::read("[1]")->document_kind(), json_kind::array);
    EXPECT_EQ(json_object::read("\"x\"")->document_kind(), json_kind::string);
    EXPECT_EQ(json_object::read("[1]")->find("0"), nullptr);
}
