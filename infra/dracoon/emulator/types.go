package emulator

// Wire types. Field names follow the schemas of the OpenAPI document 4.26.7
// (schema names in the comments); only the fields the emulator fills are listed.

// permissions is NodePermissions; every field is required on the wire.
type permissions struct {
	Manage              bool `json:"manage"`
	Read                bool `json:"read"`
	Create              bool `json:"create"`
	Change              bool `json:"change"`
	Delete              bool `json:"delete"`
	ManageDownloadShare bool `json:"manageDownloadShare"`
	ManageUploadShare   bool `json:"manageUploadShare"`
	ReadRecycleBin      bool `json:"readRecycleBin"`
	RestoreRecycleBin   bool `json:"restoreRecycleBin"`
	DeleteRecycleBin    bool `json:"deleteRecycleBin"`
}

// any reports whether at least one permission is granted.
func (p permissions) any() bool {
	return p.Manage || p.Read || p.Create || p.Change || p.Delete || p.ManageDownloadShare ||
		p.ManageUploadShare || p.ReadRecycleBin || p.RestoreRecycleBin || p.DeleteRecycleBin
}

// canHoldKey reports the permissions that make a room member a recipient of
// file keys (missingFileKeys: manage, read or manageDownloadShare).
func (p permissions) canHoldKey() bool { return p.Manage || p.Read || p.ManageDownloadShare }

// allPermissions is what a room admin gets.
func allPermissions() permissions {
	return permissions{true, true, true, true, true, true, true, true, true, true}
}

// fileKey is FileKey (key, iv, version, tag all required).
type fileKey struct {
	Key     string `json:"key"`
	IV      string `json:"iv"`
	Version string `json:"version"`
	Tag     string `json:"tag"`
}

// valid reports whether all four fields are present.
func (k *fileKey) valid() bool {
	return k != nil && k.Key != "" && k.IV != "" && k.Version != "" && k.Tag != ""
}

// publicKeyContainer is PublicKeyContainer.
type publicKeyContainer struct {
	Version   string `json:"version"`
	PublicKey string `json:"publicKey"`
	CreatedAt string `json:"createdAt,omitempty"`
	CreatedBy *int64 `json:"createdBy,omitempty"`
	ExpireAt  string `json:"expireAt,omitempty"`
}

// privateKeyContainer is PrivateKeyContainer.
type privateKeyContainer struct {
	Version    string `json:"version"`
	PrivateKey string `json:"privateKey"`
}

// userInfo is UserInfo.
type userInfo struct {
	ID         int64  `json:"id"`
	UserType   string `json:"userType"`
	AvatarUUID string `json:"avatarUuid"`
	UserName   string `json:"userName"`
	FirstName  string `json:"firstName"`
	LastName   string `json:"lastName"`
	Email      string `json:"email,omitempty"`
}

// encryptionInfo is EncryptionInfo.
type encryptionInfo struct {
	UserKeyState      string `json:"userKeyState"`
	RoomKeyState      string `json:"roomKeyState"`
	DataSpaceKeyState string `json:"dataSpaceKeyState"`
}

// nodeJSON is Node.
type nodeJSON struct {
	ID                        int64           `json:"id"`
	Type                      string          `json:"type"`
	Name                      string          `json:"name"`
	TimestampCreation         string          `json:"timestampCreation,omitempty"`
	TimestampModification     string          `json:"timestampModification,omitempty"`
	ParentID                  *int64          `json:"parentId,omitempty"` // absent at top level: the schema is not nullable
	ParentPath                string          `json:"parentPath"`
	CreatedAt                 string          `json:"createdAt"`
	CreatedBy                 *userInfo       `json:"createdBy,omitempty"`
	UpdatedAt                 string          `json:"updatedAt"`
	UpdatedBy                 *userInfo       `json:"updatedBy,omitempty"`
	ExpireAt                  string          `json:"expireAt,omitempty"`
	FileType                  string          `json:"fileType,omitempty"`
	MediaType                 string          `json:"mediaType,omitempty"`
	Size                      int64           `json:"size"`
	Classification            int             `json:"classification,omitempty"`
	Notes                     string          `json:"notes,omitempty"`
	Permissions               permissions     `json:"permissions"`
	InheritPermissions        *bool           `json:"inheritPermissions,omitempty"`
	IsEncrypted               bool            `json:"isEncrypted"`
	EncryptionInfo            *encryptionInfo `json:"encryptionInfo,omitempty"`
	CntDeletedVersions        int             `json:"cntDeletedVersions"`
	CntComments               int             `json:"cntComments"`
	CntDownloadShares         int             `json:"cntDownloadShares"`
	CntUploadShares           int             `json:"cntUploadShares"`
	RecycleBinRetentionPeriod *int            `json:"recycleBinRetentionPeriod,omitempty"`
	HasActivitiesLog          *bool           `json:"hasActivitiesLog,omitempty"`
	Quota                     *int64          `json:"quota,omitempty"`
	IsFavorite                bool            `json:"isFavorite"`
	BranchVersion             int64           `json:"branchVersion"`
	IsBrowsable               bool            `json:"isBrowsable"`
	CntRooms                  *int            `json:"cntRooms,omitempty"`
	CntFolders                *int            `json:"cntFolders,omitempty"`
	CntFiles                  *int            `json:"cntFiles,omitempty"`
	AuthParentID              *int64          `json:"authParentId,omitempty"`
}

// rangeJSON is Range.
type rangeJSON struct {
	Offset int64 `json:"offset"`
	Limit  int64 `json:"limit"`
	Total  int64 `json:"total"`
}

// nodeList is NodeList.
type nodeList struct {
	Range rangeJSON  `json:"range"`
	Items []nodeJSON `json:"items"`
}

// objectExpiration is ObjectExpiration.
type objectExpiration struct {
	EnableExpiration bool    `json:"enableExpiration"`
	ExpireAt         *string `json:"expireAt,omitempty"`
}

// s3Part is S3FileUploadPart.
type s3Part struct {
	PartNumber int    `json:"partNumber"`
	PartEtag   string `json:"partEtag"`
}
