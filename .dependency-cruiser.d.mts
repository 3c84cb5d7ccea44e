// Types of .dependency-cruiser.mjs, for the test that proves its rules bite.
declare const config: import("dependency-cruiser").IConfiguration & Required<Pick<import("dependency-cruiser").IConfiguration, "forbidden" | "options">>;
export default config;
