import { describe, expect, it } from "vitest";
import { rateLimitSubjectOf } from "./client-address.js";

describe("rateLimitSubjectOf (the limiter's key for a client address)", () => {
  it("keys every spelling of addresses in one IPv6 /64 alike: compressed, expanded, leading zeros, upper case, an IPv4 tail, a zone id", () => {
    const sameSlash64 = [
      "2001:db8:1:2::1",
      "2001:db8:1:2:0:0:0:1",
      "2001:0db8:0001:0002:0000:0000:0000:0001",
      "2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF",
      "2001:db8:1:2:a:b:1.2.3.4",
      "2001:db8:1:2::",
      "2001:db8:1:2::1%eth0",
      "2001:0db8:0001:0002:0000:0000:0000:0001%a-rather-long-zone-name",
    ];
    for (const address of sameSlash64) expect(rateLimitSubjectOf(address), address).toBe("ip:2001:db8:1:2::/64");
  });

  it("keys different /64s apart, each by its canonical prefix", () => {
    expect(rateLimitSubjectOf("2001:db8:1:3::1")).toBe("ip:2001:db8:1:3::/64");
    expect(rateLimitSubjectOf("2001:db8:1::1")).toBe("ip:2001:db8:1::/64"); // a zero fourth group, compressed
    expect(rateLimitSubjectOf("2001:0:0:1:ffff::1")).toBe("ip:2001:0:0:1::/64");
    expect(rateLimitSubjectOf("2001:db9:1:2::1")).toBe("ip:2001:db9:1:2::/64");
    expect(rateLimitSubjectOf("fe80::1%eth0")).toBe("ip:fe80::/64");
    expect(rateLimitSubjectOf("::1")).toBe("ip:::/64");
    // /64s differing in any one of the four groups are four budgets.
    const keys = ["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:2:2::1", "3001:db8:1:2::1"].map(rateLimitSubjectOf);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("keeps an IPv4 client per address, and an IPv4-mapped or NAT64 (64:ff9b::/96) address as its IPv4 address", () => {
    expect(rateLimitSubjectOf("198.51.100.7")).toBe("ip:198.51.100.7");
    for (const mapped of ["::ffff:198.51.100.7", "::FFFF:198.51.100.7", "0:0:0:0:0:ffff:198.51.100.7", "::ffff:c633:6407", "64:ff9b::198.51.100.7", "64:ff9b::c633:6407"])
      expect(rateLimitSubjectOf(mapped), mapped).toBe("ip:198.51.100.7");
    // Neighbours stay apart: no IPv4 client shares a budget with another.
    expect(rateLimitSubjectOf("::ffff:198.51.100.8")).toBe("ip:198.51.100.8");
  });

  it("keeps anything that is no address as it is, its own keys included", () => {
    expect(rateLimitSubjectOf("not-an-ip")).toBe("ip:not-an-ip");
    expect(rateLimitSubjectOf("2001:db8:1:2::/64")).toBe("ip:2001:db8:1:2::/64");
  });
});
