// `npm start`: the local platform. The services are not built yet (issue #3), so say so plainly.
console.error(
  "Titanium's local platform is not built yet: the services (issue #3) do not exist in this checkout.\n" +
    "What works today: `npm test` and `npm run plan -- --stack dev|prod`.",
);
process.exit(1);
