/**
 * An IPv6 address in one spelling (RFC 5952, as the URL parser writes it: lower case, zeros compressed,
 * an IPv4-mapped tail in hex), since browsers, libjuice and the kernel may each write it differently;
 * the input as given if it is not an IPv6 address.
 */
export function canonicalIpv6(address: string): string {
  try {
    return new URL(`http://[${address}]`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}
