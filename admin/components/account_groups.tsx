/**
 * @module
 * The table of an account's groups with its role in each, shown on the account page and the
 * device page (a device sees its account's groups).
 */

import type { AccountGroup } from "../queries.ts";
import { IdLink, Table } from "./ui.tsx";

/** An account's groups: id, its role, member count and last seq. */
export function AccountGroupTable(props: { groups: AccountGroup[] }) {
  const { groups } = props;
  return (
    <Table caption={`${groups.length} group${groups.length === 1 ? "" : "s"}`}>
      <thead>
        <tr>
          <th scope="col">Group</th>
          <th scope="col">Role</th>
          <th scope="col" class="num">Members</th>
          <th scope="col" class="num">Last seq</th>
        </tr>
      </thead>
      <tbody>
        {groups.map((g) => (
          <tr>
            <td>
              <IdLink kind="groups" id={g.id} />
            </td>
            <td>{g.role}</td>
            <td class="num">{g.members}</td>
            <td class="num">{g.last_seq}</td>
          </tr>
        ))}
      </tbody>
    </Table>
  );
}
